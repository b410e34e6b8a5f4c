"""The one way a crawl process is started, watched, stopped and judged, for `mediawatch
crawl` (run_once.py) and for the daemon alike, so both stop a crawl the same way and
record the same status for the same end.

A crawl runs in its own session (its process group holds its cleaning pool's forkserver and
workers). To stop it (timeout, operator): SIGINT to the group, which is Scrapy's graceful
stop for the crawl and is ignored by the pool's forkserver and workers, so the pages being
cleaned still reach the spool (SIGTERM would kill the workers mid-page); after STOP_GRACE
seconds the whole group gets SIGKILL. What a killed crawl wrote is in the spool anyway.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("mediawatch.supervisor")

STOP_GRACE = 6.0  # seconds a crawl gets to stop after the stop signal, then it is killed
STOP_SIGNAL = signal.SIGINT
TAIL_BYTES = 4096  # how much of the end of a crawl's log is read for its last words
TAIL_LINES = 3


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class CrawlExit:
    """How a crawl process ended, as the supervisor saw it."""

    status: str  # ok | failed | timeout | stopped | crashed
    returncode: int
    seconds: float
    stderr_tail: str = ""  # the last lines of its log when it did not end ok
    killed: bool = False  # it did not stop within STOP_GRACE


def start_crawl(
    config: str | Path,
    db: str | Path,
    outlets: list[str],
    run_id: str,
    *,
    log_path: Path | None = None,
    die_with_parent: bool = True,
    workers: int | None = None,
    progress_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a crawl subprocess in its own session. workers: its cleaning pool size, unless the
    user set MEDIAWATCH_WORKERS (which always wins); None leaves the crawl's default (one per core)."""
    env = dict(os.environ)
    if workers is not None and not env.get("MEDIAWATCH_WORKERS"):
        env["MEDIAWATCH_WORKERS"] = str(workers)
    env["MEDIAWATCH_PDEATHSIG"] = "1" if die_with_parent else "0"
    if progress_dir is not None:
        # crawler/progress.py writes its figures there
        env["MEDIAWATCH_PROGRESS_DIR"] = str(progress_dir)
    env.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    from archive.target import is_lake

    if is_lake(db):  # the crawl spools into this machine's home for the lake, wherever it runs
        from archive.lake.home import HOME_ENV, lake_home

        env[HOME_ENV] = str(lake_home(str(db)))
    # "--": an outlet name is never read as an option
    cmd = [sys.executable, "-m", "crawler.crawlproc", "--config", str(config), "--db", str(db)]
    cmd += ["--run-id", run_id, "--", *outlets]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the crawl's process group (it leads its own session); only the crawl itself
    when the group cannot be signalled."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # the whole group is gone already
    except PermissionError:
        proc.send_signal(sig)


def supervise(
    proc: subprocess.Popen[bytes],
    *,
    timeout: float,
    label: str,
    should_stop: Callable[[], bool] = lambda: False,
    on_tick: Callable[[], None] | None = None,
    poll: float = 0.25,
    log_path: Path | None = None,
) -> CrawlExit:
    """Watch a crawl to its end: stop it at `timeout` seconds or when `should_stop()` says so
    (a Ctrl-C too), kill its group STOP_GRACE seconds later. `on_tick` runs between polls (the
    ingest of `mediawatch crawl`). If watching fails, the crawl is killed and the error raised."""
    started = time.monotonic()
    status: str | None = None
    stop_sent: float | None = None
    killed = False

    def stop(why: str) -> None:
        nonlocal status, stop_sent
        status = why
        signal_group(proc, STOP_SIGNAL)
        stop_sent = time.monotonic()

    def kill() -> None:
        nonlocal killed
        log.warning("%s did not stop in %.0fs: killing it", label, STOP_GRACE)
        signal_group(proc, signal.SIGKILL)
        killed = True

    try:
        while True:
            try:
                try:
                    returncode = proc.wait(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if on_tick is not None:
                    on_tick()
                elapsed = time.monotonic() - started
                if status is None and elapsed > timeout:
                    log.warning("%s timed out after %.0fs: stopping it", label, elapsed)
                    stop("timeout")
                elif status is None and should_stop():
                    stop("stopped")
                if (
                    stop_sent is not None
                    and not killed
                    and time.monotonic() - stop_sent > STOP_GRACE
                ):
                    kill()
            except KeyboardInterrupt:  # Ctrl-C of `mediawatch crawl`: stop; a second one kills
                if status is None:
                    log.warning("%s: stopping it (Ctrl-C again to kill it)", label)
                    stop("stopped")
                elif not killed:
                    kill()
    except BaseException:
        signal_group(proc, signal.SIGKILL)  # never leave a crawl running unsupervised
        proc.wait()
        raise
    seconds = time.monotonic() - started
    if status is None:
        status = "ok" if returncode == 0 else ("crashed" if returncode < 0 else "failed")
    tail = log_tail(log_path) if status != "ok" and log_path is not None else ""
    if status in ("failed", "crashed") and tail:
        log.warning(
            "%s ended %s (exit %d); its log ends: %s",
            label,
            status,
            returncode,
            tail.replace("\n", " | "),
        )
    return CrawlExit(status, returncode, seconds, tail, killed)


def log_tail(path: Path) -> str:
    """The last non-empty lines of a crawl's log (its stdout and stderr): its last words."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:])


def abnormal_end_message(status: str, returncode: int) -> str:
    """What crawl_runs.message says of a run the supervisor saw end badly."""
    return {
        "timeout": "crawl timed out and was stopped",
        "stopped": "stopped by the operator",
        "crashed": f"crawl process died (signal {-returncode})",
        "failed": f"crawl process exited with code {returncode}",
    }[status]
