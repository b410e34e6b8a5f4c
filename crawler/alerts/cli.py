"""`mediawatch alerts` (each alert, its deliveries and failures) and `mediawatch alerts test
NAME` (what would be sent now). Read-only: safe while the daemon runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from archive.db import ArchiveError
from crawler.options import config_option, db_option, fail

_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


PREVIEW_WINDOW = 5000  # articles a not yet started alert is tried on by `alerts test`


def _config(config_path: str) -> Any:
    from crawler.outlets import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), 2)


def _iso(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _targets(alert: Any, db: str) -> dict[str, str]:
    from crawler.alerts.outbox import feed_file

    out = {"atom": str(feed_file(db, alert.name))}
    if alert.webhook:
        out["webhook"] = f"POST {alert.webhook}"
    if alert.email:
        out["email"] = f"{', '.join(alert.email.to)} via {alert.email.host}:{alert.email.port}"
    return out


def _lake(db: str) -> Any:
    """The LakeTarget of a lake URL, None for a file."""
    from archive.target import LakeTarget, parse_target

    target = parse_target(db)
    return target if isinstance(target, LakeTarget) else None


def _lake_overview(target: Any) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any]]:
    import psycopg

    from archive.lake import alerts as lake_outbox
    from archive.target import unreachable

    try:
        with psycopg.connect(target.libpq(read_only=True)) as pg:
            if not lake_outbox.has_alert_tables(pg):
                return {}, {}
            return lake_outbox.overview(pg), lake_outbox.match_counts(pg)
    except psycopg.OperationalError as exc:
        raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None


def list_rows(config: Any, db: str) -> list[dict[str, Any]]:
    """Per configured alert: its query, and per channel what was sent, waits, failed."""
    from archive import alerts as outbox
    from archive.db import reader

    overview: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[str, Any] = {}
    target = _lake(db)
    if target is not None:
        overview, counts = _lake_overview(target)
    elif Path(db).exists():
        with reader(Path(db)) as con:
            if outbox.has_alert_tables(con):
                overview, counts = outbox.overview(con), outbox.match_counts(con)
    empty = {
        "sent": 0,
        "waiting": 0,
        "retrying": 0,
        "failed": 0,
        "last_sent_at": None,
        "last_error": None,
        "next_attempt_at": None,
    }
    rows = []
    for alert in config.alerts:
        matched, clusters, _ = counts.get(alert.name, (0, 0, None))
        targets = _targets(alert, db)
        rows.append(
            {
                "name": alert.name,
                "query": alert.query,
                "outlets": list(alert.spec.outlets),
                "languages": list(alert.spec.languages),
                "matched_articles": matched,
                "clusters": clusters,
                "started": alert.name in counts,
                "channels": {
                    ch: {
                        "target": targets[ch],
                        **{k: _iso(v) for k, v in overview.get((alert.name, ch), empty).items()},
                    }
                    for ch in alert.spec.channels
                },
            }
        )
    return rows


def _table(rows: list[dict[str, Any]], config_path: str) -> None:
    """One row per alert and channel, then each alert's query: fits 80 columns."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{len(rows)} alerts in {config_path}"))
    for column in (
        "alert",
        "channel",
        "sent",
        "waiting",
        "failed",
        "last sent",
        "last error",
    ):
        table.add_column(column)
    for row in rows:
        for i, (ch, c) in enumerate(row["channels"].items()):
            trouble = c["last_error"] or ""
            if c["retrying"] and c["next_attempt_at"]:
                trouble = f"{trouble}; next try {c['next_attempt_at'][11:19]}Z".lstrip("; ")
            last = c["last_sent_at"][:16].replace("T", " ") if c["last_sent_at"] else "never"
            cells = (row["name"] if i == 0 else "", ch, str(c["sent"]), str(c["waiting"]), str(c["failed"]),
                     last, trouble)  # fmt: skip
            table.add_row(*(Text(x) for x in cells))  # config and errors are data, not Rich markup
    console = Console()
    console.print(table)
    for row in rows:
        scope = "".join(f"; {k}: {', '.join(row[k])}" for k in ("outlets", "languages") if row[k])
        note = (
            ""
            if row["started"]
            else " (not started: the daemon alerts on what it archives from then on)"
        )
        line = f"{row['name']}: {row['query']}{scope}; {row['matched_articles']} articles matched{note}"
        console.print(Text(line))


def preview(config: Any, name: str, db: str) -> dict[str, Any]:
    """What the daemon would send now for this alert: deliveries waiting in the outbox, and
    the matches of articles archived since its watermark (a new alert: the latest matches)."""
    from archive import alerts as outbox
    from archive.db import reader

    alert = next((a for a in config.alerts if a.name == name), None)
    if alert is None:
        known = ", ".join(a.name for a in config.alerts) or "none"
        fail(f"{config.path}: no alert named {name!r} (known: {known})", 2)
    out: dict[str, Any] = {
        "alert": alert.name,
        "query": alert.query,
        "targets": _targets(alert, db),
        "started": False,
        "waiting": [],
        "new": [],
    }
    target = _lake(db)
    if target is not None:
        return _lake_preview(alert, target, out)
    if not Path(db).exists():
        return out
    with reader(Path(db)) as con:
        started = outbox.has_alert_tables(con) and outbox.watermark(con, name) is not None
        upto = outbox.max_article_id(con)
        if started:
            mark = outbox.watermark(con, name) or 0
            waiting = outbox.waiting(con, name)
            articles = outbox.cluster_articles(con, name, [w["cluster_id"] for w in waiting])
            out["waiting"] = [
                _waiting(alert, w, articles.get(w["cluster_id"], [])) for w in waiting
            ]
            found = outbox.matches(con, alert.spec, mark, upto)
            joins = outbox.known_clusters(con, name, [c for _, c, _ in found])
        else:
            # what it would have caught among the latest articles (not the whole archive's matches)
            found = outbox.matches(con, alert.spec, max(0, upto - PREVIEW_WINDOW), upto)[-10:]
            joins = set()
        meta = outbox.articles_by_id(con, [a for a, _, _ in found])
    out["started"] = started
    out["new"] = [
        {
            "cluster_id": cluster,
            "joins_earlier_delivery": cluster in joins,
            "article": _article({**meta.get(aid, {"id": aid}), "snippet": snip}),
        }
        for aid, cluster, snip in found
    ]
    return out


def _lake_preview(alert: Any, target: Any, out: dict[str, Any]) -> dict[str, Any]:
    """preview() on a lake: its outbox and search index in PostgreSQL, articles in the lake."""
    import psycopg

    from archive.lake import alerts as lake_outbox
    from archive.lake.connect import connect_lake_read
    from archive.target import unreachable

    try:
        with psycopg.connect(target.libpq(read_only=True)) as pg:
            if not lake_outbox.has_alert_tables(pg):
                return out
            started = lake_outbox.watermark(pg, alert.name) is not None
            lake = connect_lake_read(target)
            try:
                found = lake_outbox.preview(pg, lake, target, alert.spec)
            finally:
                lake.close()
            waiting = lake_outbox.waiting(pg, alert.name) if started else []
            articles = lake_outbox.cluster_articles(
                pg, alert.name, [w["cluster_id"] for w in waiting]
            )
            joins = lake_outbox.known_clusters(pg, alert.name, [f["cluster_id"] for f in found])
    except psycopg.OperationalError as exc:
        raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None
    out["started"] = started
    out["waiting"] = [_waiting(alert, w, articles.get(w["cluster_id"], [])) for w in waiting]
    out["new"] = [
        {
            "cluster_id": f["cluster_id"],
            "joins_earlier_delivery": started and f["cluster_id"] in joins,
            "article": _article({k: v for k, v in f.items() if k != "cluster_id"}),
        }
        for f in found
    ]
    return out


def _waiting(alert: Any, w: dict[str, Any], articles: list[dict[str, Any]]) -> dict[str, Any]:
    """A waiting delivery as it would go: the webhook's exact JSON, the e-mail's subject."""
    from crawler.alerts import channels

    out = {**{k: _iso(v) for k, v in w.items()}, "articles": [_article(a) for a in articles]}
    if w["channel"] == "webhook":
        out["payload"] = channels.webhook_payload(
            alert, w["delivery_id"], w["cluster_id"], articles
        )
    elif w["channel"] == "email" and alert.email is not None:
        out["subject"] = channels.email_message(alert, alert.email, w["delivery_id"], articles)[
            "Subject"
        ]
    return out


def _article(a: dict[str, Any]) -> dict[str, Any]:
    from crawler.alerts.channels import article_json

    return article_json(a)


def _print_preview(p: dict[str, Any]) -> None:
    click.echo(f"alert {p['alert']}: {p['query']}")
    for channel, target in p["targets"].items():
        click.echo(f"  {channel:8} -> {target}")
    if not p["started"]:
        click.echo(
            "the daemon has not started this alert: it alerts on articles archived after it does. "
            f"Its latest matches among the archive's last {PREVIEW_WINDOW:,} articles:"
        )
    else:
        clusters = {n["cluster_id"] for n in p["new"] if not n["joins_earlier_delivery"]}
        click.echo(
            f"{len(p['waiting'])} deliveries waiting in the outbox; {len(p['new'])} new matching articles "
            f"not queued yet ({len(clusters)} new deliveries per channel, the rest join earlier ones)"
        )
    for w in p["waiting"]:
        first = w["articles"][0] if w["articles"] else {}
        state = (
            w["status"]
            if not w["attempts"]
            else f"{w['status']}, {w['attempts']} attempts, next {w['next_attempt_at']}"
        )
        click.echo(
            f"  delivery {w['delivery_id']} {w['channel']} ({state}): {first.get('title')} {first.get('url')}"
        )
        if w["last_error"]:
            click.echo(f"    last error: {w['last_error']}")
    for n in p["new"]:
        a = n["article"]
        note = " (joins its cluster's delivery)" if n["joins_earlier_delivery"] else ""
        click.echo(f"  new: [{a.get('outlet')}] {a.get('title')} {a.get('url')}{note}")


def register(group: click.Group) -> None:
    @group.group("alerts", invoke_without_command=True)
    @config_option
    @db_option
    @_FORMAT
    @click.pass_context
    def alerts_cmd(ctx: click.Context, config_path: str, db_path: str, fmt: str) -> None:
        """List the config's alerts: per channel (atom, webhook, email) the deliveries sent,
        waiting and failed, the last one sent and the last error. Alerts are [[alert]]
        entries of the config; the daemon (`mediawatch run`) delivers them.

        \b
        Example:
          mediawatch alerts --config outlets.toml
          mediawatch alerts --format json | jq '.[] | select(.channels.webhook.failed > 0)'
          mediawatch alerts test municipales
        """
        if ctx.invoked_subcommand is not None:
            return
        config = _config(config_path)
        try:
            rows = list_rows(config, db_path)
        except ArchiveError as exc:
            fail(str(exc))
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            _table(rows, config_path)

    @alerts_cmd.command("test")
    @click.argument("name")
    @config_option
    @db_option
    @_FORMAT
    def test_cmd(name: str, config_path: str, db_path: str, fmt: str) -> None:
        """Show what the alert NAME would send now: deliveries waiting in the outbox (and
        why, when they failed) and the new matching articles not queued yet. Sends nothing.

        \b
        Example:
          mediawatch alerts test municipales --config outlets.toml
          mediawatch alerts test municipales --format json
        """
        config = _config(config_path)
        try:
            p = preview(config, name, db_path)
        except ArchiveError as exc:
            fail(str(exc))
        if fmt == "json":
            click.echo(json.dumps(p, indent=2, ensure_ascii=False))
        else:
            _print_preview(p)

    del alerts_cmd, test_cmd
