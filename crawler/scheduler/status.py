"""`mediawatch status`: per-outlet figures from the outlet_status view, read-only (never the
daemon's lock), as JSON rows or as a table that fits 80 columns, then one line per outlet that
needs a look, saying what went wrong ("connection refused by ...", "feed ... answered 404")
from the first failed run, not only once the daemon marks the outlet unhealthy.

Every value is printed as data (rich Text), never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from archive import runs as runs_db
from archive.db import ArchiveError, connect_read
from archive.ingest import quarantine_counts
from crawler.scheduler.lock import lock_path

STATUS_COLUMNS = (
    "outlet",
    "healthy",
    "health_reason",
    "last_run_id",
    "last_run_at",
    "last_run_status",
    "last_run_requests",
    "last_run_new",
    "last_run_updated",
    "last_run_errors",
    "last_run_seconds",
    "next_run_at",
    "interval_seconds",
    "delay_seconds",
    "consecutive_failures",
    "runs_24h",
    "failed_runs_24h",
    "run_failure_rate_24h",
    "articles_24h",
    "articles_total",
    "pages_24h",
    "error_rate_24h",
    "empty_extraction_rate_24h",
    "last_article_at",
    "days_since_new_article",
    "last_run_failed",
    "last_run_failure",
)


def read_status(db: Path | str, configured: list[str] | None = None) -> list[dict[str, Any]]:
    """Per-outlet status from the outlet_status view, opened read-only (never the daemon's
    lock); on a lake, also which daemon holds each outlet's lease."""
    from archive.target import is_lake

    leases: dict[str, tuple[str, int, object]] = {}
    if is_lake(db):
        from archive.lake.connect import open_lake_reader
        from archive.lake.leases import holders
        from archive.target import parse_target

        con, _ = open_lake_reader(str(db))
        try:
            leases = holders(parse_target(str(db)))  # type: ignore[arg-type]
        except Exception:
            con.close()
            raise
    else:
        con = connect_read(db)
    try:
        try:
            rows = runs_db.status_rows(con, STATUS_COLUMNS)
        except runs_db.NoStatusView as exc:
            raise ArchiveError(
                f"{db}: this archive has no daemon state of this version yet ({exc}); "
                "start `mediawatch run` once"
            ) from None
        quarantine = quarantine_counts(con)
    finally:
        con.close()
    running = daemon_pid(db)
    out = [
        dict(zip(STATUS_COLUMNS, row, strict=True)) | {"daemon_running": running is not None}
        for row in rows
    ]
    for r in out:
        r["quarantined"], r["quarantine_reason"] = quarantine.get(r["outlet"], (0, None))[:2]
        if is_lake(db):
            r["lease_holder"], r["lease_fence"], r["lease_expires_at"] = leases.get(
                r["outlet"], (None, None, None)
            )
            r["daemon_running"] = r["lease_holder"] is not None
    known = {r["outlet"] for r in out}
    for name in configured or []:
        if name not in known:
            out.append(
                {c: None for c in STATUS_COLUMNS}
                | {
                    "outlet": name,
                    "runs_24h": 0,
                    "articles_24h": 0,
                    "daemon_running": running is not None,
                }
            )
    if configured is not None:
        for r in out:
            r["configured"] = r["outlet"] in configured
    return sorted(out, key=lambda r: r["outlet"])


def daemon_pid(db: Path | str) -> int | None:
    """The running daemon's pid, from its lock file and /proc, without touching the lock
    (a probe flock could make a starting daemon think another one runs)."""
    try:
        pid = int(lock_path(db).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"mediawatch" in cmdline and b"run" in cmdline else None


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = (value - now).total_seconds()
    s = abs(seconds)
    text = (
        f"{s:.0f}s"
        if s < 120
        else f"{s / 60:.0f}m"
        if s < 7200
        else f"{s / 3600:.1f}h"
        if s < 172800
        else f"{s / 86400:.1f}d"
    )
    return f"in {text}" if seconds > 0 else f"{text} ago"


def health(row: dict[str, Any]) -> str:
    """ok | FAILING (its last run failed) | UNHEALTHY (the daemon's verdict) | never ran."""
    if row.get("healthy") is False:
        return "UNHEALTHY"
    if row.get("last_run_failed"):
        return "FAILING"
    if row.get("last_run_status") is None:
        return "never ran"
    return "ok"


def problems(rows: Iterable[dict[str, Any]]) -> list[str]:
    """One line per outlet that needs a look: what went wrong, in words."""
    out = []
    for r in rows:
        if r.get("configured") is False:
            continue
        if r.get("healthy") is False and r.get("health_reason"):
            out.append(f"{r['outlet']}: {r['health_reason']}")
        elif r.get("last_run_failed"):
            why = r.get("last_run_failure") or r.get("last_run_status") or "failed"
            out.append(f"{r['outlet']}: last run failed: {why}")
    return out


def print_status(
    rows: list[dict[str, Any]],
    db: Path | str,
    daemon_pid: int | None,
    *,
    notes: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> None:
    """The status table and the lines under it. `notes`: more lines for the end (e.g. a
    count of quarantined spool segments)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    now = datetime.now(UTC)
    shown = [r for r in rows if r.get("configured") is not False]
    gone = [r["outlet"] for r in rows if r.get("configured") is False]
    console = Console(file=stream, highlight=False)  # width: the terminal's, else $COLUMNS, else 80
    console.print(Text(f"{len(shown)} outlets in {db}"))
    table = Table(pad_edge=False, box=None, header_style="bold")
    for name, justify in (
        ("outlet", "left"),
        ("health", "left"),
        ("last run", "right"),
        ("new/err", "right"),
        ("next run", "right"),
        ("24h", "right"),
        ("failed", "right"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in shown:
        state = health(r)
        style = "red" if state in ("UNHEALTHY", "FAILING") else ""
        result = (
            "-"
            if r.get("last_run_status") is None
            else f"{r.get('last_run_new') or 0}/{r.get('last_run_errors') or 0}"
        )
        runs = r.get("runs_24h") or 0
        failed = f"{r.get('failed_runs_24h') or 0}/{runs}" if runs else "-"
        table.add_row(
            Text(r["outlet"]),
            Text(state, style=style),
            Text(_ago(r.get("last_run_at"), now)),
            Text(result),
            Text(_ago(r.get("next_run_at"), now)),
            Text(str(r.get("articles_24h") or 0)),
            Text(failed),
        )
    console.print(table)
    for line in problems(shown):
        console.print(Text(line, style="red"))
    if gone:
        console.print(
            Text(f"not in the config any more (their runs stay in the archive): {', '.join(gone)}")
        )
    holders = {r["outlet"]: r["lease_holder"] for r in shown if "lease_holder" in r}
    if holders:  # a lake: the daemons sharing it, by the outlets they hold
        for outlet, holder in sorted(holders.items()):
            console.print(Text(f"{outlet}: crawled by {holder or 'no daemon (lease free)'}"))
    else:
        console.print(
            Text(
                f"daemon: running (pid {daemon_pid})"
                if daemon_pid
                else "daemon: not running (next runs are what it had planned)"
            )
        )
    for line in notes:
        console.print(Text(line), soft_wrap=True)  # one line each, for grep; the terminal wraps it


def print_status_table(rows: list[dict[str, Any]], db: Path | str) -> None:
    """The table, then the outlets to look at, the daemon's state and the quarantine notes."""
    notes = [
        f"{r['outlet']}: {r['quarantined']} spool records quarantined (latest: {r['quarantine_reason']}); "
        "see table spool_quarantine"
        for r in rows
        if r.get("quarantined")
    ]
    print_status(rows, db, daemon_pid(db), notes=notes)
