"""The one crawl supervisor (crawler/scheduler/supervisor.py): `mediawatch crawl` and the
daemon stop a crawl the same way (stop signal to its group, one grace period, then SIGKILL to
the group) and record the same status for it. Real processes, real signals."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from archive.spool import SpoolWriter, spool_dir_for
from crawler.scheduler.supervisor import STOP_GRACE, supervise
from tests.conftest import REPO, config_file, rows, run_cli
from tests.fakeweb import FakeWeb
from tests.procs import alive, processes_naming
from tests.test_daemon import Daemon, stuck_outlet, wait_for

# A crawl that will not stop: it and its child (in its process group, like the cleaning
# pool's workers) ignore SIGINT and SIGTERM.
STUBBORN = r"""
import os, signal, subprocess, sys, time
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time\nfor s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.SIG_IGN)\n"
    "time.sleep(600)"])
print(f"child {child.pid}", flush=True)
print("fetching https://example.org/slow", flush=True)
time.sleep(600)
"""


def test_a_crawl_that_ignores_the_stop_signal_is_killed_with_its_group(tmp_path: Path) -> None:
    log = tmp_path / "crawl.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", STUBBORN], stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while "fetching" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(log.read_text().split()[1])
    end = supervise(proc, timeout=0.5, label="stubborn run", log_path=log)
    assert (end.status, end.returncode, end.killed) == ("timeout", -9, True)
    assert 0.5 + STOP_GRACE <= end.seconds < 0.5 + STOP_GRACE + 5, end.seconds
    time.sleep(0.2)
    assert not alive(child), "the crawl's child (a cleaning worker) outlived the kill"
    assert end.stderr_tail.endswith("fetching https://example.org/slow")


def test_a_crawl_that_ends_itself_is_judged_by_its_exit(tmp_path: Path) -> None:
    log = tmp_path / "crawl.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('error: no outlet named x'); sys.exit(2)"],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    end = supervise(proc, timeout=60, label="short run", log_path=log)
    assert (end.status, end.returncode, end.killed) == ("failed", 2, False)
    assert end.stderr_tail == "error: no outlet named x"


def _run_row(db: Path) -> tuple[str, str]:
    ((status, message),) = rows(db, "SELECT status, message FROM crawl_runs")
    return status, message


def test_mediawatch_crawl_and_the_daemon_end_a_hung_crawl_the_same_way(tmp_path: Path) -> None:
    """A feed that hangs longer than the grace period: Scrapy's graceful stop waits for the
    download, so both supervisors must kill the crawl, and both record 'timeout'."""
    web = stuck_outlet(seconds=60)
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "stuck"\nfeeds = ["{web.base}/feed.xml"]\n'
            'every = "1h"\ntimeout = "10s"\n'
        )
        once = tmp_path / "once" / "archive.duckdb"
        started = time.monotonic()
        result = run_cli(
            "crawl", "--config", str(config), "--db", str(once), "--timeout", "10", timeout=120
        )
        took = time.monotonic() - started
        assert result.returncode == 1, result.stderr[-3000:]
        assert "timed out after 10s: stopping it" in result.stderr
        assert f"did not stop in {STOP_GRACE:.0f}s: killing it" in result.stderr
        assert took < 10 + STOP_GRACE + 30, f"mediawatch crawl took {took:.0f}s"
        assert web.requests_to("/feed.xml"), (
            "the crawl was stopped in the middle of its feed download"
        )
        assert ": timeout in " in result.stderr

        db = tmp_path / "daemon" / "archive.duckdb"
        daemon = Daemon(config, db).start()
        try:
            wait_for(
                "the timed-out run recorded",
                lambda: (
                    rows(db, "SELECT count(*) FROM crawl_runs WHERE status = 'timeout'")[0][0] >= 1
                ),
                90,
                daemon,
            )
            daemon.stop_cleanly()
        finally:
            daemon.kill()
        assert f"did not stop in {STOP_GRACE:.0f}s: killing it" in daemon.log()
        assert _run_row(once) == _run_row(db) == ("timeout", "crawl timed out and was stopped")
        leftovers = [
            pid for pid in processes_naming(str(once)) + processes_naming(str(db)) if alive(pid)
        ]
        assert leftovers == [], "a crawl process outlived its supervisor"
    finally:
        web.stop()


def test_status_of_an_archive_older_than_the_status_view_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE pages (id INTEGER)")  # an archive of a mediawatch before the daemon
    con.close()
    result = run_cli("status", "--db", str(db), cwd=REPO)
    assert result.returncode == 1
    assert (
        result.stderr.count("\n") == 1
        and "has no daemon state of this version yet" in result.stderr
    )
    assert "Traceback" not in result.stderr and os.path.getsize(db) > 0


def test_ctrl_c_of_mediawatch_crawl_stops_its_crawl_and_records_it(tmp_path: Path) -> None:
    """Ctrl-C reaches only `mediawatch crawl` (its crawl runs in its own session): the crawl is
    stopped through the supervisor, recorded 'stopped', and nothing is left running."""
    import signal

    from tests.conftest import MEDIAWATCH

    web = stuck_outlet(seconds=60)
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(f'[[outlet]]\nname = "stuck"\nfeeds = ["{web.base}/feed.xml"]\n')
        db = tmp_path / "archive.duckdb"
        proc = subprocess.Popen(
            [str(MEDIAWATCH), "crawl", "--config", str(config), "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        wait_for("the feed request", lambda: web.requests_to("/feed.xml"), 60)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr[-3000:]
        assert "Traceback" not in stderr and ": stopped in " in stderr
        assert _run_row(db) == ("stopped", "stopped by the operator")
        assert [pid for pid in processes_naming(str(db)) if alive(pid)] == []
    finally:
        web.stop()


def test_mediawatch_crawl_closes_a_run_whose_crawl_died_between_two_segments(
    fake_outlet: FakeWeb, tmp_path: Path
) -> None:
    """A crawl killed -9 just after it finished a segment leaves no open segment, so its ingest
    cannot tell it died: the next `mediawatch crawl` says it crashed, as the daemon does at start
    (bench/chaos.py found the run left 'running' for good)."""
    db = tmp_path / "archive.duckdb"
    dead = SpoolWriter(spool_dir_for(db), "20240101T000000-dead01.courrier")
    dead.open()
    dead.write(
        {
            "type": "run_start",
            "run_id": "20240101T000000-dead01",
            "outlet": "courrier",
            "started_at": "2024-01-01T00:00:00+00:00",
        }
    )
    dead.close()  # what is left of it: one finished segment, no run record, no live lock
    config = config_file(tmp_path, fake_outlet.base)
    result = run_cli("crawl", "--config", str(config), "--db", str(db))
    assert result.returncode == 0, result.stderr[-3000:]
    assert rows(db, "SELECT run_id, status, message FROM crawl_runs ORDER BY run_id")[0] == (
        "20240101T000000-dead01",
        "crashed",
        "crawl ended without recording its end",
    )
    assert [s for (s,) in rows(db, "SELECT status FROM crawl_runs ORDER BY run_id")] == [
        "crashed",
        "ok",
    ]


def test_a_crawl_orphaned_in_a_hung_download_ends_soon_after_its_daemon_dies(
    tmp_path: Path,
) -> None:
    """kill -9 of the daemon while its crawl waits on a feed that hangs for a minute: the
    crawl's graceful stop would wait for that download, and the restarted daemon waits for a
    crawl of an earlier daemon, so the outlet went unserved for as long as the download hung
    (seen as a 90 s timeout under load). The orphan must end within ORPHAN_GRACE."""
    from crawler.crawlproc import ORPHAN_GRACE

    web = stuck_outlet(seconds=60)
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "stuck"\nfeeds = ["{web.base}/feed.xml"]\nevery = "1h"\n'
        )
        db = tmp_path / "archive.duckdb"
        daemon = Daemon(config, db).start()
        try:
            wait_for("the feed being fetched", lambda: web.requests_to("/feed.xml"), 60, daemon)
            (crawl,) = wait_for("the crawl process", daemon.children, 10, daemon)
            daemon.kill()
            orphaned = time.monotonic()
            while alive(crawl) and time.monotonic() - orphaned < ORPHAN_GRACE + 20:
                time.sleep(0.2)
            lived = time.monotonic() - orphaned
            assert not alive(crawl), f"the orphaned crawl still runs {lived:.0f}s after its daemon"
        finally:
            daemon.kill()
        assert lived < ORPHAN_GRACE + 10
        assert [p for p in processes_naming(str(db)) if alive(p)] == [], "a worker outlived it"
    finally:
        web.stop()
