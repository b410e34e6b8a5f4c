"""Load and validate the outlet config (TOML) into typed Outlet objects.

Every error names the file, the outlet and the key, on one line, because a user
editing a config of fifty outlets needs to know exactly where to look.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import regex
from apscheduler.triggers.cron import CronTrigger

from pipelines.promo import compile_outlet_rules

if TYPE_CHECKING:
    from crawler.alerts.config import Alert

# A letter or digit first: a name is passed to the crawl subprocess as an argument, and
# "-h" or "--help" must never be read as an option there.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class ConfigError(Exception):
    """A config problem, as one line: FILE: outlet NAME: key KEY: what is wrong."""


@dataclass(frozen=True)
class Outlet:
    name: str
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    start_urls: tuple[str, ...] = ()
    article_pattern: regex.Pattern[str] | None = None
    language: str | None = None
    every_seconds: float | None = 1800.0
    cron: str | None = None
    delay: float = 1.0
    concurrency: int = 2
    domains: tuple[str, ...] = ()
    max_articles: int = 500
    revisit: bool = True
    user_agent: str | None = None
    strip_selectors: tuple[str, ...] = ()
    strip_patterns: tuple[str, ...] = ()
    min_interval_seconds: float | None = None
    max_interval_seconds: float | None = None
    timeout_seconds: float = 900.0
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return self.feeds + self.sitemaps + self.start_urls


@dataclass(frozen=True)
class Config:
    path: Path
    outlets: tuple[Outlet, ...]
    user_agent: str | None = None
    alerts: tuple[Alert, ...] = ()  # [[alert]] entries (crawler/alerts/config.py)

    def get(self, name: str) -> Outlet:
        for outlet in self.outlets:
            if outlet.name == name:
                return outlet
        known = ", ".join(o.name for o in self.outlets) or "none"
        raise ConfigError(f"{self.path}: no outlet named {name!r} (known: {known})")


# key -> (expected python types, description used in errors)
_LIST_KEYS = (
    "feeds",
    "sitemaps",
    "start_urls",
    "domains",
    "strip_selectors",
    "strip_patterns",
    "allow_networks",
)
_KNOWN_KEYS = {
    "name",
    "feeds",
    "sitemaps",
    "start_urls",
    "article_pattern",
    "language",
    "every",
    "cron",
    "delay",
    "concurrency",
    "domains",
    "max_articles",
    "revisit",
    "user_agent",
    "strip_selectors",
    "strip_patterns",
    "min_interval",
    "max_interval",
    "timeout",
    "allow_networks",
}
_TOP_KEYS = {"outlet", "defaults", "user_agent", "alert"}


def parse_duration(value: Any) -> float:
    """'2s', '15m', '1h', '1d' (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '30m'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a positive, finite number of seconds, got {value!r}")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
            if 0 < seconds < math.inf:
                return seconds
    raise ValueError(f"expected a duration like '2s', '15m', '1h' or '1d', got {value!r}")


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


def load_config(path: str | Path) -> Config:
    return read_config(path)[0]


def read_config(path: str | Path) -> tuple[Config, bytes]:
    """The config and the bytes it was parsed from, read once (the daemon snapshots them)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_config(data, p), raw


def parse_config(data: dict[str, Any], path: Path) -> Config:
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{path}: key {key!r}: unknown top-level key (expected [[outlet]], [[alert]], [defaults], user_agent)"
            )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: key 'defaults': must be a table")
    for key in defaults:
        if key not in _KNOWN_KEYS or key == "name":
            raise ConfigError(f"{path}: [defaults]: key {key!r}: unknown key")
    entries = data.get("outlet", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: key 'outlet': use [[outlet]] tables")
    if not entries:
        raise ConfigError(f"{path}: no [[outlet]] defined")
    user_agent = data.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        raise ConfigError(f"{path}: key 'user_agent': must be a string")
    outlets: list[Outlet] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        name = entry.get("name")
        label = f"outlet {name!r}" if isinstance(name, str) else f"outlet #{index}"
        own = {
            k: v
            for k, v in defaults.items()
            if not ({k, "every", "cron"} == {"every", "cron"} and ({"every", "cron"} & set(entry)))
        }
        merged = {**own, **entry}  # an outlet's own every/cron replaces the default schedule
        try:
            outlet = _parse_outlet(merged)
        except BadKey as exc:
            raise ConfigError(f"{path}: {label}: key {exc.key!r}: {exc.message}") from None
        if outlet.name in seen:
            raise ConfigError(f"{path}: {label}: key 'name': duplicate outlet name")
        seen.add(outlet.name)
        outlets.append(outlet)
    from crawler.alerts.config import parse_alerts

    alerts = parse_alerts(data.get("alert", []), path, [o.name for o in outlets])
    return Config(path=path, outlets=tuple(outlets), user_agent=user_agent, alerts=alerts)


class BadKey(Exception):
    """One key of a config entry is wrong; the caller names the file and the entry."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def string_list(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list of non-empty strings (or one string), stripped; BadKey otherwise."""
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadKey(key, "must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _number(
    entry: dict[str, Any], key: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    value = entry.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise BadKey(key, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise BadKey(key, f"must be a finite number >= {minimum}, got {value!r}")
    return value


def _parse_outlet(entry: dict[str, Any]) -> Outlet:
    for key in entry:
        if key not in _KNOWN_KEYS:
            raise BadKey(key, "unknown key")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadKey(
            "name", f"must match [a-z0-9][a-z0-9_-]{{0,63}} (a letter or digit first), got {name!r}"
        )
    sources: dict[str, tuple[str, ...]] = {}
    for key in ("feeds", "sitemaps", "start_urls"):
        urls = string_list(entry, key)
        for url in urls:
            try:
                _check_url(url)
            except ValueError as exc:
                raise BadKey(key, str(exc)) from None
        sources[key] = urls
    if not any(sources.values()):
        raise BadKey("feeds", "an outlet needs at least one source: feeds, sitemaps or start_urls")
    pattern = None
    if "article_pattern" in entry:
        raw = entry["article_pattern"]
        if not isinstance(raw, str):
            raise BadKey("article_pattern", "must be a string (a regular expression)")
        try:
            # The regex module, matched with a timeout (crawler.discovery): a pattern that
            # backtracks catastrophically on one crafted URL cannot stall the run.
            pattern = regex.compile(raw)
        except (regex.error, re.error) as exc:
            raise BadKey("article_pattern", f"bad regular expression: {exc}") from None
    language = entry.get("language")
    if language is not None and (
        not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language)
    ):
        raise BadKey("language", f"must be an ISO 639 code like 'fr', got {language!r}")
    every: float | None = None
    cron = entry.get("cron")
    if cron is not None:
        if not isinstance(cron, str):
            raise BadKey("cron", "must be a string like '*/30 * * * *'")
        try:
            CronTrigger.from_crontab(cron)
        except ValueError as exc:
            raise BadKey("cron", f"bad cron expression: {exc}") from None
    else:
        try:
            every = parse_duration(entry.get("every", "30m"))
        except ValueError as exc:
            raise BadKey("every", str(exc)) from None
    intervals: dict[str, float | None] = {}
    for key in ("min_interval", "max_interval", "timeout"):
        if key in entry:
            try:
                intervals[key] = parse_duration(entry[key])
            except ValueError as exc:
                raise BadKey(key, str(exc)) from None
        else:
            intervals[key] = None
    if (
        intervals["min_interval"]
        and intervals["max_interval"]
        and intervals["min_interval"] > intervals["max_interval"]
    ):
        raise BadKey("min_interval", "must not be longer than max_interval")
    domains = tuple(d.lower() for d in string_list(entry, "domains"))
    for domain in domains:
        if not _HOST_RE.match(domain):
            raise BadKey("domains", f"expected host names like 'example.org', got {domain!r}")
    if not domains:
        hosts = []
        for url in sources["feeds"] + sources["sitemaps"] + sources["start_urls"]:
            host = (urlsplit(url).hostname or "").lower()
            host = host[4:] if host.startswith("www.") else host
            if host and host not in hosts:
                hosts.append(host)
        domains = tuple(hosts)
    networks = []
    for raw_net in string_list(entry, "allow_networks"):
        try:
            networks.append(ipaddress.ip_network(raw_net, strict=False))
        except ValueError:
            raise BadKey(
                "allow_networks", f"expected networks like '10.20.0.0/16', got {raw_net!r}"
            ) from None
    selectors = string_list(entry, "strip_selectors")
    patterns = string_list(entry, "strip_patterns")
    if selectors or patterns:
        _check_promo_overrides(selectors, patterns)
    user_agent = entry.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        raise BadKey("user_agent", "must be a string")
    revisit = entry.get("revisit", True)
    if not isinstance(revisit, bool):
        raise BadKey("revisit", "must be true or false")
    return Outlet(
        name=name,
        feeds=sources["feeds"],
        sitemaps=sources["sitemaps"],
        start_urls=sources["start_urls"],
        article_pattern=pattern,
        language=language,
        every_seconds=every,
        cron=cron,
        delay=float(_number(entry, "delay", 1.0, minimum=0)),
        concurrency=int(_number(entry, "concurrency", 2, minimum=1, integer=True)),
        domains=domains,
        max_articles=int(_number(entry, "max_articles", 500, minimum=1, integer=True)),
        revisit=revisit,
        user_agent=user_agent,
        strip_selectors=selectors,
        strip_patterns=patterns,
        min_interval_seconds=intervals["min_interval"],
        max_interval_seconds=intervals["max_interval"],
        timeout_seconds=intervals["timeout"] or 900.0,
        allow_networks=tuple(networks),
    )


def _check_promo_overrides(selectors: tuple[str, ...], patterns: tuple[str, ...]) -> None:
    """Compile the per-outlet promo overrides now, so a bad one fails at load, not mid-crawl."""
    try:
        compile_outlet_rules(list(selectors), list(patterns))
    except ValueError as exc:
        key = "strip_selectors" if "selector" in str(exc).lower() else "strip_patterns"
        raise BadKey(key, str(exc)) from None
