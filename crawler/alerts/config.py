"""`[[alert]]` entries of the outlet config, validated on load and compiled once.

An alert is data beside the outlets it watches, so it is refused like any config error:
one line naming the file, the alert and the key (`outlets.toml: alert 'x': key 'query': ...`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.alerts import AlertSpec
from archive.search_syntax import QuerySyntaxError, parse_query
from crawler.outlets import BadKey, ConfigError, parse_duration, string_list

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # also the feed's file name
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$",
    re.IGNORECASE,
)
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYS = {"name", "query", "outlets", "languages", "webhook", "email", "retry", "max_attempts"}
_EMAIL_KEYS = {"host", "port", "from", "to", "starttls", "username", "password_env"}
DEFAULT_RETRY = 60.0  # seconds before the first retry; doubled at each failure
DEFAULT_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Email:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable


@dataclass(frozen=True)
class Alert:
    spec: AlertSpec
    webhook: str | None = None
    email: Email | None = None
    retry_seconds: float = DEFAULT_RETRY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def query(self) -> str:
        return self.spec.query.text


def parse_alerts(entries: Any, path: Path, outlets: list[str]) -> tuple[Alert, ...]:
    """The config's alerts; ConfigError (crawler.outlets) on the first bad one."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: key 'alert': use [[alert]] tables")
    alerts: list[Alert] = []
    for index, entry in enumerate(entries, start=1):
        name = entry.get("name")
        label = f"alert {name!r}" if isinstance(name, str) else f"alert #{index}"
        try:
            alert = _parse(entry, outlets)
            if any(a.name == alert.name for a in alerts):
                raise BadKey("name", "duplicate alert name")
        except BadKey as exc:
            raise ConfigError(f"{path}: {label}: key {exc.key!r}: {exc.message}") from None
        alerts.append(alert)
    return tuple(alerts)


def _parse(entry: dict[str, Any], outlets: list[str]) -> Alert:
    for key in entry:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, sorted(_KEYS), n=1)
            raise BadKey(key, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadKey(
            "name", f"must match [a-z0-9][a-z0-9_-]{{0,63}} (it names the feed file), got {name!r}"
        )
    query = entry.get("query")
    if not isinstance(query, str):
        raise BadKey("query", "required: a search like '\"élections municipales\" -paris'")
    try:
        parsed = parse_query(query)
    except QuerySyntaxError as exc:
        raise BadKey("query", str(exc)) from None
    only = string_list(entry, "outlets")
    for outlet in only:
        if outlet not in outlets:
            close = difflib.get_close_matches(outlet, outlets, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(outlets)}"
            raise BadKey("outlets", f"unknown outlet {outlet!r} ({hint})")
    languages = tuple(x.lower() for x in string_list(entry, "languages"))
    for lang in languages:
        if not re.fullmatch(r"[a-z]{2,3}", lang):
            raise BadKey("languages", f"expected ISO 639 codes like 'fr', got {lang!r}")
    webhook = entry.get("webhook")
    if webhook is not None:
        if not isinstance(webhook, str):
            raise BadKey("webhook", "must be a URL string")
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadKey("webhook", f"not an http(s) URL: {webhook!r}")
    email = _email(entry["email"]) if "email" in entry else None
    retry = DEFAULT_RETRY
    if "retry" in entry:
        try:
            retry = parse_duration(entry["retry"])
        except ValueError as exc:
            raise BadKey("retry", str(exc)) from None
    attempts = entry.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise BadKey("max_attempts", f"must be an integer from 1 to 100, got {attempts!r}")
    channels = ("atom", *(("webhook",) if webhook else ()), *(("email",) if email else ()))
    spec = AlertSpec(name, parsed, only, languages, channels)
    return Alert(spec, webhook, email, retry, attempts)


def _address(value: Any, key: str, *, display: bool) -> str:
    """An e-mail address (with a display name when `display`), checked by the stdlib's RFC 5322 parser."""
    if not isinstance(value, str) or not value.strip():
        raise BadKey(key, "must be an e-mail address")
    shown, addr = parseaddr(value) if display else ("", value.strip())
    try:
        parsed = Address(addr_spec=addr)
    except (ValueError, HeaderParseError, IndexError) as exc:
        raise BadKey(key, f"not an e-mail address: {value!r} ({exc})") from None
    if not parsed.username or not _HOST_RE.match(parsed.domain or ""):
        raise BadKey(key, f"not an e-mail address: {value!r}")
    return (
        str(Address(display_name=shown, addr_spec=parsed.addr_spec)) if shown else parsed.addr_spec
    )


def _email(raw: Any) -> Email:
    if not isinstance(raw, dict):
        raise BadKey("email", "must be a table: { host = ..., port = 587, from = ..., to = [...] }")
    for key in raw:
        if key not in _EMAIL_KEYS:
            raise BadKey(f"email.{key}", "unknown key")
    host = raw.get("host")
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise BadKey("email.host", f"expected a host name like 'smtp.example.org', got {host!r}")
    port = raw.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadKey("email.port", f"must be a port number, got {port!r}")
    if "from" not in raw:
        raise BadKey("email.from", "required: the sender's address")
    sender = _address(raw["from"], "email.from", display=True)
    to_raw = raw.get("to")
    to_list = [to_raw] if isinstance(to_raw, str) else to_raw
    if not isinstance(to_list, list) or not to_list:
        raise BadKey("email.to", "required: an address or a list of addresses")
    to = tuple(_address(a, "email.to", display=False) for a in to_list)
    starttls = raw.get("starttls", False)
    if not isinstance(starttls, bool):
        raise BadKey("email.starttls", "must be true or false")
    username = raw.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise BadKey("email.username", "must be a non-empty string")
    password_env = raw.get("password_env")
    if password_env is not None and (
        not isinstance(password_env, str) or not _ENV_RE.match(password_env)
    ):
        raise BadKey(
            "email.password_env", "must name an environment variable, like 'SMTP_PASSWORD'"
        )
    if (username is None) != (password_env is None):
        raise BadKey(
            "email.username" if username is None else "email.password_env",
            "username and password_env go together",
        )
    return Email(host, port, sender, to, starttls, username, password_env)
