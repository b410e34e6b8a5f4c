"""`mediawatch status` as a table that fits 80 columns, then one line per outlet that needs
a look, saying what went wrong ("connection refused by ...", "feed ... answered 404") from
the first failed run, not only once the daemon marks the outlet unhealthy.

Every value is printed as data (rich Text), never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


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
    db: Path,
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
    console.print(
        Text(
            f"daemon: running (pid {daemon_pid})"
            if daemon_pid
            else "daemon: not running (next runs are what it had planned)"
        )
    )
    for line in notes:
        console.print(Text(line), soft_wrap=True)  # one line each, for grep; the terminal wraps it
