"""The three ways an alert reaches someone: an Atom feed file, a webhook, an e-mail.

Each raises DeliveryError with one line saying what went wrong; the service records it in
the outbox (last_error) and retries later. Network calls have timeouts, so a dead peer
costs a delivery attempt, never the daemon.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.alerts.config import Alert, Email

WEBHOOK_TIMEOUT = 10.0
SMTP_TIMEOUT = 20.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DeliveryError(Exception):
    """A delivery attempt that failed, as one line."""


def feed_path(db: Path, alert: str) -> Path:
    """`<db dir>/alerts/<name>.atom`: beside the archive, where the web app serves it from."""
    return db.parent / "alerts" / f"{alert}.atom"


def _iso(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def article_json(article: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "outlet", "title", "url", "published_at", "language", "snippet")
    return {k: _iso(article.get(k)) for k in keys}


def webhook_payload(
    alert: Alert, delivery_id: int, cluster_id: int, articles: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The JSON a webhook receives: the first article of the cluster and its copies."""
    return {
        "alert": alert.name,
        "query": alert.query,
        "delivery_id": delivery_id,
        "cluster_id": cluster_id,
        "articles": [article_json(a) for a in articles],
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would become a GET: a webhook that moved must be re-configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_webhook(
    url: str, payload: dict[str, Any], delivery_id: int, *, timeout: float = WEBHOOK_TIMEOUT
) -> None:
    """POST the payload as JSON, with the delivery id as Idempotency-Key: a delivery sent
    again after a crash carries the same key, so a receiver can drop the second copy."""
    host = urlsplit(url).netloc
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": str(delivery_id),
            "User-Agent": "mediawatch-alerts",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook {host} answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"webhook {host}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, a bad URL
        raise DeliveryError(f"webhook {host}: {exc or type(exc).__name__}") from None


def email_message(
    alert: Alert, email: Email, delivery_id: int, articles: Sequence[dict[str, Any]]
) -> EmailMessage:
    """One message per delivery; its Message-ID is the delivery's, the same when sent again."""
    first = articles[0] if articles else {}
    copies = len(articles) - 1
    subject = (
        f"[mediawatch] {alert.name}: {first.get('title') or first.get('url') or 'new article'}"
    )
    if copies > 0:
        subject += f" (+{copies} {'copy' if copies == 1 else 'copies'})"
    lines = [f"New article for the alert '{alert.name}' ({alert.query}):", ""]
    for i, a in enumerate(articles):
        if i == 1:
            lines += ["Also published as:", ""]
        published = _iso(a.get("published_at")) or "no date"
        lines += [
            f"{a.get('title') or '(no title)'}",
            f"{a.get('outlet')}, {published}",
            str(a.get("url")),
            "",
        ]
        if i == 0 and a.get("snippet"):
            lines += [str(a["snippet"]), ""]
    msg = EmailMessage()
    msg["Subject"] = " ".join(subject.split())[:200]
    msg["From"] = email.sender
    msg["To"] = ", ".join(email.to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    domain = parseaddr(email.sender)[1].rpartition("@")[2] or "mediawatch"
    msg["Message-ID"] = f"<mediawatch-alert-{alert.name}-{delivery_id}@{domain}>"
    msg["X-Mediawatch-Delivery"] = str(delivery_id)
    msg.set_content("\n".join(lines))
    return msg


def send_email(email: Email, message: EmailMessage, *, timeout: float = SMTP_TIMEOUT) -> None:
    where = f"{email.host}:{email.port}"
    password = None
    if email.password_env:
        password = os.environ.get(email.password_env)
        if password is None:
            raise DeliveryError(
                f"smtp {where}: environment variable {email.password_env} is not set"
            )
    try:
        with smtplib.SMTP(email.host, email.port, timeout=timeout) as smtp:
            if email.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if email.username and password is not None:
                smtp.login(email.username, password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            f"smtp {where} refused every recipient: {', '.join(exc.recipients)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise DeliveryError(f"smtp {where} answered {exc.smtp_code}: {text}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"smtp {where}: {exc or type(exc).__name__}") from None
    if refused:
        raise DeliveryError(f"smtp {where} refused {', '.join(sorted(refused))}")


def render_atom(alert: Alert, entries: Sequence[dict[str, Any]]) -> bytes:
    """The alert's Atom feed (feedgen): newest delivery first, one entry per cluster, its
    copies in the summary. Entry ids name the alert and cluster: stable across rewrites."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(f"urn:mediawatch:alert:{alert.name}")
    fg.title(f"mediawatch alert: {alert.name}")
    fg.subtitle(alert.query)
    fg.author({"name": "mediawatch"})
    fg.link(href=f"/alerts/{alert.name}.atom", rel="self")
    fg.generator("mediawatch")
    fg.updated(max((e["enqueued_at"] for e in entries), default=_EPOCH))
    for entry in reversed(entries):  # feedgen prepends: the newest ends first
        articles = entry["articles"]
        if not articles:
            continue
        first = articles[0]
        fe = fg.add_entry()
        fe.id(f"urn:mediawatch:alert:{alert.name}:cluster:{entry['cluster_id']}")
        fe.title(first.get("title") or first.get("url") or "untitled")
        fe.link(href=first["url"])
        fe.author({"name": first.get("outlet") or "unknown"})
        fe.updated(entry["enqueued_at"])
        if first.get("published_at"):
            fe.published(first["published_at"])
        summary = first.get("snippet") or ""
        if len(articles) > 1:
            summary += "\n\nAlso published by: " + "; ".join(
                f"{a['outlet']} {a['url']}" for a in articles[1:]
            )
        if summary:
            fe.summary(summary)
    return bytes(fg.atom_str(pretty=True))


def write_atom(path: Path, data: bytes) -> None:
    """Atomically: a reader (the web app, a feed reader on the file) sees the old or the new feed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DeliveryError(f"atom feed {path}: {exc.strerror or exc}") from None
