"""The daemon for real: `mediawatch run` as a subprocess against fake outlets on 127.0.0.1,
with real signals, real crawl processes and concurrent readers in other processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import duckdb
import pytest

from archive.db import wal_bytes
from archive.spool import spool_dir_for
from crawler.outlets import parse_config
from crawler.scheduler.policy import OutletState, RunFigures, advance, bounds
from tests.conftest import ARTICLE_PATHS as STORED_ARTICLES
from tests.conftest import (
    MEDIAWATCH,
    REPO,
    RSS,
    build_outlet,
    config_file,
    outlet_config,
    rows,
    run_cli,
)
from tests.fakeweb import FakeWeb, Route
from tests.procs import children

ARTICLES = 5  # what one crawl of build_outlet archives (tests/test_e2e_crawl.py)
ARTICLE_PATHS = [*STORED_ARTICLES, "/2024/05/19/missing", "/2024/05/21/report.pdf"]

READER = r"""
import json, sys, time
from pathlib import Path
from archive.db import connect_read
db, stop = sys.argv[1], Path(sys.argv[2])
lat, failures = [], []
while not stop.exists():
    t = time.monotonic()
    try:
        con = connect_read(db)
        con.execute("SELECT count(*) FROM articles").fetchall()
        con.close()
        lat.append(time.monotonic() - t)
    except Exception as exc:
        failures.append(str(exc))
    time.sleep(0.1)
print(json.dumps({"n": len(lat), "max": max(lat, default=0), "failures": failures}))
"""

HOLD = r"""
import sys, time
from archive.db import connect_read
con = connect_read(sys.argv[1])
con.execute("SELECT count(*) FROM pages").fetchall()
time.sleep(float(sys.argv[2]))
con.close()
"""


# -- helpers ------------------------------------------------------------------------------------


class Daemon:
    """`mediawatch run` in its own process, its stderr in a file."""

    def __init__(self, config: Path, db: Path) -> None:
        self.config, self.db = config, db
        db.parent.mkdir(parents=True, exist_ok=True)
        self.stderr_path = db.parent / f"daemon-{time.monotonic_ns()}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MEDIAWATCH), "run", "--config", str(self.config), "--db", str(self.db)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=REPO,
                env={**os.environ},
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        return children(self.pid)

    def stop(self, sig: int = signal.SIGTERM, bound: float = 20.0) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=bound + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"daemon did not stop within {bound + 10}s:\n{self.log()[-3000:]}"
            ) from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def stop_cleanly(self, sig: int = signal.SIGTERM) -> float:
        """Stop it and require exit 0 (a user's `kill` must end it well); seconds it took."""
        code, took = self.stop(sig)
        assert code == 0, f"daemon exited {code}:\n{self.log()[-3000:]}"
        return took

    def wait_archived(self, count: int = ARTICLES, timeout: float = 90) -> None:
        """Until the archive holds `count` articles (by default one run of the outlet)."""
        wait_for(
            f"{count} articles archived",
            lambda: rows(self.db, "SELECT count(*) FROM articles")[0][0] == count,
            timeout,
            self,
        )


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, daemon: Daemon | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (duckdb.Error, OSError, ValueError):
            value = None
        except Exception as exc:  # the archive not created yet
            if "no archive here" not in str(exc):
                raise
            value = None
        if value:
            return value
        if daemon is not None and not daemon.alive():
            raise AssertionError(f"daemon died while waiting for {what}:\n{daemon.log()[-3000:]}")
        time.sleep(0.5)
    log = daemon.log()[-4000:] if daemon else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def status_json(db: Path) -> dict[str, dict[str, Any]]:
    result = run_cli("status", "--db", str(db), "--format", "json", timeout=30)
    assert result.returncode == 0, result.stderr
    return {r["outlet"]: r for r in json.loads(result.stdout)}


def failing_outlet() -> FakeWeb:
    """Every source answers 500: the outlet is down, not quiet."""
    web = FakeWeb()
    web.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    for path in ("/feed.xml", "/sitemap.xml"):
        web.add(path, "<html><body>Internal error</body></html>", status=500)
    return web.start()


def stuck_outlet(seconds: float = 25.0) -> FakeWeb:
    """A feed that never answers within the crawl's timeout."""
    web = FakeWeb()
    web.add("/robots.txt", "User-agent: *\n", content_type="text/plain")

    def hang(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)

    web.add_handler("/feed.xml", hang)
    return web.start()


def slow_articles(web: FakeWeb, seconds: float) -> None:
    """Article pages answer slowly, so a kill lands in the middle of a crawl."""
    for path in ARTICLE_PATHS:
        route = web.routes[path]
        assert isinstance(route, Route)

        def serve(handler: Any, route: Route = route) -> None:
            time.sleep(seconds)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the crawl was killed
                handler._send(route.status, route.body, dict(route.headers))

        web.add_handler(path, serve)


def publish_new_article(web: FakeWeb) -> str:
    """The outlet publishes one more article (and lists it in its feed); its path."""
    path = "/2024/05/25/importe-steigen"
    web.add(path, web.fixture("wirtschaft.html").replace("dritten", "vierten"))
    item = f"<item><title>Importe</title><link>{web.base}{path}</link></item></channel>"
    web.add(
        "/feed.xml",
        RSS.format(base=web.base).replace("</channel>", item),
        content_type="application/rss+xml",
        etag=True,
    )
    return path


def archived_once(db: Path, path: str) -> bool:
    """The article at this path is in the archive, once."""
    found = rows(db, "SELECT count(*) FROM articles WHERE canonical_url LIKE ?", [f"%{path}"])
    return bool(found[0][0] == 1)


def requests_of(web: FakeWeb, path: str) -> int:
    return sum(1 for p in web.requests_to(path) if p == path or p.startswith(path + "?"))


@pytest.fixture
def courrier() -> Iterator[FakeWeb]:
    with serving_courrier() as web:
        yield web


@contextlib.contextmanager
def serving_courrier() -> Iterator[FakeWeb]:
    """The stored outlet with a permanent 410 instead of its 500: a transient article failure
    would (rightly) keep the feed's validators back, and this outlet is the 304 case."""
    web = FakeWeb()
    build_outlet(web)
    web.add("/2024/05/20/broken", "<html><body>gone</body></html>", status=410)
    web.start()
    try:
        yield web
    finally:
        web.stop()


# -- the policy, as a pure function -------------------------------------------------------------


def _outlet(extra: str = "") -> Any:
    import tomllib

    text = f'[[outlet]]\nname = "x"\nfeeds = ["http://127.0.0.1/feed.xml"]\nevery = "10m"\n{extra}'
    return parse_config(tomllib.loads(text), Path("t.toml")).outlets[0]


def test_interval_adapts_within_bounds_and_failures_back_off() -> None:
    outlet = _outlet()
    assert bounds(outlet) == (600, 150, 2400)
    now = datetime.now(UTC)
    state = OutletState("x", 600)
    for _ in range(10):
        state = advance(outlet, state, RunFigures("r", "ok", new=5), now)
    assert state.interval == 150, "news arriving shortens the interval down to min_interval"
    for _ in range(20):
        state = advance(outlet, state, RunFigures("r", "ok"), now)
    assert state.interval == 2400, "quiet polls lengthen it up to max_interval"
    delays: list[float] = []
    for _ in range(6):
        state = advance(outlet, state, RunFigures("r", "ok", errors=3), now)
        assert state.delay is not None
        delays.append(state.delay)
    assert delays == sorted(delays) and delays[0] == 4800 and delays[-1] == 4 * 2400, delays
    assert not state.healthy and "6 consecutive failed runs" in (state.reason or "")
    state = advance(outlet, state, RunFigures("r", "ok", new=1), now)
    assert state.healthy and state.failures == 0 and state.delay == state.interval == 2400 * 0.8


def test_a_stopped_run_or_errors_with_news_are_no_failure() -> None:
    outlet = _outlet('min_interval = "5m"\nmax_interval = "1h"')
    now = datetime.now(UTC)
    state = OutletState("x", 600, failures=2)
    assert advance(outlet, state, RunFigures("r", "stopped"), now).failures == 2
    assert advance(outlet, state, RunFigures("r", "ok", errors=1, new=1), now).failures == 0
    assert advance(outlet, state, RunFigures("r", "crashed"), now).failures == 3
    assert bounds(outlet) == (600, 300, 3600)


# -- the daemon, for real -----------------------------------------------------------------------


def test_daemon_schedules_serves_readers_backs_off_and_stops(
    courrier: FakeWeb, tmp_path: Path
) -> None:
    broken, stuck = failing_outlet(), stuck_outlet()
    config = tmp_path / "outlets.toml"
    config.write_text(
        outlet_config(courrier.base)
        + f"""
[[outlet]]
name = "broken"
feeds = ["{broken.base}/feed.xml"]
sitemaps = ["{broken.base}/sitemap.xml"]
every = "1s"

[[outlet]]
name = "stuck"
feeds = ["{stuck.base}/feed.xml"]
every = "1s"
timeout = "2s"
"""
    )
    db = tmp_path / "data" / "archive.duckdb"
    daemon = Daemon(config, db).start()
    reader: subprocess.Popen[str] | None = None
    stop_reader = tmp_path / "stop-reader"
    try:
        # A second daemon on the same archive refuses at once, in one line.
        wait_for(
            "the daemon lock", lambda: db.with_name(db.name + ".daemon.lock").exists(), 20, daemon
        )
        second = run_cli("run", "--config", str(config), "--db", str(db), timeout=30)
        assert second.returncode == 1
        assert (
            "another mediawatch daemon" in second.stderr
            and len(second.stderr.strip().splitlines()) == 1
        )
        # ... also when --db reaches the same archive through a symlink (to the file or to its directory)
        (tmp_path / "link.duckdb").symlink_to(db)
        (tmp_path / "data-link").symlink_to(db.parent, target_is_directory=True)
        for alias in (tmp_path / "link.duckdb", tmp_path / "data-link" / db.name):
            third = run_cli("run", "--config", str(config), "--db", str(alias), timeout=30)
            assert third.returncode == 1 and "another mediawatch daemon" in third.stderr, (
                third.stderr[-2000:]
            )
        assert (
            not (tmp_path / "link.spool").exists()
            and not (tmp_path / "link.duckdb.daemon.lock").exists()
        )

        wait_for("the archive", db.exists, 30, daemon)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(db), str(stop_reader)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        # A user holding a long query only delays ingest: the articles all arrive below.
        hold = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "5"], cwd=REPO)

        # The courrier is crawled, then polled again and again; the failing outlet backs off.
        wait_for(
            "5 articles",
            lambda: rows(db, "SELECT count(*) FROM articles")[0][0] >= ARTICLES,
            60,
            daemon,
        )
        assert hold.wait(timeout=60) == 0
        query = run_cli("query", "--db", str(db), "SELECT count(*) AS n FROM articles", timeout=30)
        assert query.returncode == 0, query.stderr
        wait_for(
            "3 courrier runs",
            lambda: (
                rows(
                    db,
                    "SELECT count(*) FROM crawl_runs WHERE outlet = 'courrier' AND status = 'ok'",
                )[0][0]
                >= 3
            ),
            40,
            daemon,
        )
        status = wait_for(
            "broken reported unhealthy",
            lambda: (s := status_json(db)).get("broken", {}).get("healthy") is False and s,
            45,
            daemon,
        )
        assert status["broken"]["consecutive_failures"] >= 3
        assert (
            status["broken"]["last_run_errors"] > 0
            and "consecutive failed runs" in status["broken"]["health_reason"]
        )
        assert (
            status["courrier"]["healthy"] is True and status["courrier"]["articles_24h"] == ARTICLES
        )
        assert status["courrier"]["next_run_at"] is not None
        # a hung crawl is stopped at its timeout and recorded (waited for: a loaded machine is slow)
        wait_for(
            "a timed-out run of the stuck outlet",
            lambda: (
                rows(
                    db,
                    "SELECT count(*) FROM crawl_runs WHERE outlet = 'stuck' AND status = 'timeout'",
                )[0][0]
                >= 1
            ),
            60,
            daemon,
        )

        # The failing outlet's delays grow: 2s, 4s, 8s... (the daemon logs each run's next delay).
        delays = [
            float(line.split("next in ")[1].split("s")[0])
            for line in daemon.log().splitlines()
            if " broken run " in line and "next in " in line
        ]
        assert len(delays) >= 3 and delays[:3] == [2.0, 4.0, 8.0], delays
        feed_hits = [i for i, (_, p) in enumerate(broken.log) if p == "/feed.xml"]
        assert len(feed_hits) >= 3

        # SIGHUP with a broken config: logged, recorded, and the daemon goes on with the old one.
        good = config.read_text()
        mtime = config.stat().st_mtime
        config.write_text(good + "\n[[outlet]]\nname = 'Bad Name'\n")
        os.utime(config, (mtime, mtime))  # only the signal may trigger this reload
        runs_before = rows(
            db, "SELECT count(*) FROM crawl_runs WHERE outlet = 'courrier' AND status = 'ok'"
        )[0][0]
        os.kill(daemon.pid, signal.SIGHUP)
        wait_for(
            "config_invalid event",
            lambda: rows(db, "SELECT message FROM daemon_events WHERE kind = 'config_invalid'"),
            20,
            daemon,
        )
        assert "config not reloaded (SIGHUP)" in daemon.log() and "'Bad Name'" in daemon.log()
        wait_for(
            "a run after the broken config",
            lambda: (
                rows(
                    db,
                    "SELECT count(*) FROM crawl_runs WHERE outlet = 'courrier' AND status = 'ok'",
                )[0][0]
                > runs_before
            ),
            30,
            daemon,
        )
        config.write_text(good)

        seconds = daemon.stop_cleanly()
        assert seconds < 20, f"stop took {seconds:.1f}s"
    finally:
        stop_reader.touch()
        daemon.kill()
        broken.stop()
        stuck.stop()
    assert reader is not None
    out, _ = reader.communicate(timeout=60)
    seen = json.loads(out)
    assert seen["failures"] == [] and seen["n"] >= 10, seen
    assert seen["max"] < 5, f"a reader waited {seen['max']:.1f}s"

    # A 304 feed costs no article request: every article page was fetched in the first run only.
    assert rows(db, "SELECT count(*) FROM articles") == [(ARTICLES,)]
    for path in ARTICLE_PATHS:
        assert requests_of(courrier, path) <= 1, (
            f"{path} fetched {requests_of(courrier, path)} times"
        )
    feed_runs = rows(
        db, "SELECT count(*) FROM crawl_runs WHERE outlet = 'courrier' AND status = 'ok'"
    )[0][0]
    assert requests_of(courrier, "/feed.xml") >= feed_runs >= 3
    assert (
        dict(rows(db, "SELECT url, last_status FROM http_state"))[f"{courrier.base}/feed.xml"]
        == 304
    )
    assert "courrier run " in daemon.log() and " requests, " in daemon.log()
    crawl_logs = [p for p in (db.parent / "logs").iterdir() if p.name.startswith("courrier.")]
    assert crawl_logs, "crawl logs in <db dir>/logs"
    # Four crawls may run at once (--max-parallel 4): they share the cores instead of each
    # starting a pool of one worker per core.
    pool_sizes = {
        line.split("cleaning pages in ")[1].split()[0]
        for p in crawl_logs
        for line in p.read_text(errors="replace").splitlines()
        if "cleaning pages in " in line
    }
    if not os.environ.get("MEDIAWATCH_WORKERS"):
        assert pool_sizes == {str(max(1, (os.cpu_count() or 1) // 4))}, pool_sizes
    assert not list(spool_dir_for(db).glob("*.jsonl")), "pending items were ingested at stop"
    assert wal_bytes(db) == 0, (
        "at stop the log is folded into the file: the archive at rest is one file"
    )


def test_kill_9_of_a_crawl_and_of_the_daemon_loses_nothing(
    courrier: FakeWeb, tmp_path: Path
) -> None:
    slow_articles(courrier, 0.7)
    config = config_file(tmp_path, courrier.base, extra="concurrency = 1")
    db = tmp_path / "archive.duckdb"

    def article_hits() -> int:
        return sum(requests_of(courrier, p) for p in ARTICLE_PATHS)

    daemon = Daemon(config, db).start()
    try:
        wait_for("articles being fetched", lambda: article_hits() >= 2, 60, daemon)
        crawls = wait_for("the crawl process", daemon.children, 10, daemon)
        for pid in crawls:
            os.kill(pid, signal.SIGKILL)
        wait_for(
            "the killed crawl recorded",
            lambda: rows(db, "SELECT count(*) FROM crawl_runs WHERE status = 'crashed'")[0][0] >= 1,
            30,
            daemon,
        )
        hits = article_hits()
        wait_for("the next run fetching", lambda: article_hits() >= hits + 1, 60, daemon)
        daemon.kill()  # kill -9 of the daemon itself, a crawl in flight
    finally:
        daemon.kill()

    restarted = Daemon(config, db).start()
    try:
        wait_for(
            "every article archived",
            lambda: rows(db, "SELECT count(*) FROM articles")[0][0] >= ARTICLES,
            90,
            restarted,
        )
        wait_for(
            "a quiet run after",
            lambda: (
                rows(
                    db,
                    "SELECT count(*) FROM crawl_runs WHERE status = 'ok' AND articles_new = 0 "
                    "AND started_at > (SELECT max(first_seen_at) FROM articles)",
                )[0][0]
                >= 1
            ),
            60,
            restarted,
        )
        restarted.stop_cleanly()
    finally:
        restarted.kill()
    assert rows(db, "SELECT count(*) FROM articles") == [(ARTICLES,)]
    assert (
        rows(
            db,
            "SELECT url, count(*) FROM pages WHERE article_id IS NOT NULL GROUP BY url "
            "HAVING count(*) > 1",
        )
        == []
    ), "an article page ingested twice"
    assert rows(db, "SELECT count(*) FROM crawl_runs WHERE status = 'running'") == [(0,)]
    assert not [p for p in spool_dir_for(db).iterdir() if p.suffix in (".jsonl", ".part")]


def test_archive_errors_reach_the_daemon_log(tmp_path: Path) -> None:
    """A quarantined record or a failed checkpoint is logged by archive.ingest: it must land in
    daemon.log with a timestamp, not only on the daemon's stderr."""
    import logging

    from crawler.scheduler.logs import setup_logging

    names = ("mediawatch", "archive", "apscheduler")
    saved = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).level,
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    try:
        setup_logging(tmp_path / "logs", "INFO")
        logging.getLogger("archive.ingest").error("record r1 quarantined: boom")
        logging.getLogger("mediawatch.daemon").info("lemonde run ok")
        for n in names:
            for handler in logging.getLogger(n).handlers:
                handler.flush()
        text = (tmp_path / "logs" / "daemon.log").read_text()
    finally:
        for n, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(n)
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
    assert " ERROR record r1 quarantined: boom" in text
    assert " INFO lemonde run ok" in text


def test_a_read_write_client_on_the_archive_neither_stops_nor_delays_crawling(
    courrier: FakeWeb, tmp_path: Path
) -> None:
    """A user opens the archive read-write in another program (`duckdb data/archive.duckdb`, a
    notebook). The crawls must go on into the spool (they crashed: the seen-set read needed the
    archive), without back-off; a query names the holder (pid, command) and how to read
    alongside; once the holder closes, everything fetched meanwhile is archived, once."""

    config = config_file(tmp_path, courrier.base)
    db = tmp_path / "data" / "archive.duckdb"
    daemon = Daemon(config, db).start()
    holder: subprocess.Popen[str] | None = None
    try:
        daemon.wait_archived()
        holder = subprocess.Popen(
            # like a user's shell, it gets in between the daemon's short write sessions
            [
                sys.executable,
                "-c",
                "import duckdb, sys, time\nfor _ in range(600):\n    try:\n"
                "        con = duckdb.connect(sys.argv[1])\n        break\n    except duckdb.IOException:\n"
                "        time.sleep(0.05)\nprint('held', flush=True)\nsys.stdin.read()\ncon.close()\n",
                str(db),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        query = run_cli("query", "SELECT count(*) FROM articles", "--db", str(db), timeout=60)
        assert query.returncode == 1
        error = query.stderr.strip()
        assert error.startswith("error: ") and "\n" not in error
        assert (
            f"pid {holder.pid}" in error and "duckdb.connect" in error and "read-only" in error
        ), error

        # a new article appears while the archive is held: it is fetched, into the spool
        new_path = publish_new_article(courrier)
        wait_for(
            "the new article fetched while the archive is held",
            lambda: courrier.requests_to(new_path),
            90,
            daemon,
        )
        feeds = len(courrier.requests_to("/feed.xml"))
        wait_for(
            "runs going on while the archive is held",
            lambda: len(courrier.requests_to("/feed.xml")) >= feeds + 2,
            90,
            daemon,
        )
        assert holder.poll() is None, "the holder held the archive all along"

        holder.communicate("", timeout=30)  # the user closes the shell
        wait_for(
            "the article fetched meanwhile archived",
            lambda: archived_once(db, new_path),
            90,
            daemon,
        )
        assert rows(db, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [
            (ARTICLES + 1,) * 2
        ]
        # the run in progress at this moment is 'running': not a failure
        failed = rows(
            db,
            "SELECT status, count(*) FROM crawl_runs WHERE status NOT IN ('ok', 'running') GROUP BY 1",
        )
        assert failed == [], (
            f"runs failed while the archive was held: {failed}\n{daemon.log()[-3000:]}"
        )
        assert "unhealthy" not in daemon.log() and "failing x" not in daemon.log()
        daemon.stop_cleanly()
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        daemon.kill()


def test_a_poison_spool_segment_neither_stops_ingest_nor_hides_in_the_status(
    courrier: FakeWeb, tmp_path: Path
) -> None:
    """Segments the daemon cannot ingest (a line `7`, `[1,2]`, random bytes) are quarantined;
    the daemon goes on ingesting every later crawl, and `mediawatch status` shows the quarantine."""
    import random

    config = config_file(tmp_path, courrier.base)
    db = tmp_path / "data" / "archive.duckdb"
    daemon = Daemon(config, db).start()
    try:
        daemon.wait_archived()
        spool = spool_dir_for(db)
        poison = {
            "20000101T000000-dead01.courrier-000001.jsonl": b'7\n[1, 2]\n{"type": "page"}\n',
            "20000101T000000-dead01.courrier-000002.jsonl": random.Random(5).randbytes(50_000),
        }
        for name, data in poison.items():
            (spool / f".{name}.tmp").write_bytes(data)
            os.replace(spool / f".{name}.tmp", spool / name)
        new_path = publish_new_article(courrier)
        wait_for(
            "an article published after the poison archived",
            lambda: archived_once(db, new_path),
            90,
            daemon,
        )
        assert not [p for p in spool.iterdir() if p.name in poison], (
            "the poison segments are retired"
        )
        assert sorted(p.name for p in (spool / "quarantine").iterdir()) == sorted(poison)
        status = status_json(db)["courrier"]
        assert status["quarantined"] >= 4 and status["healthy"] is True
        table = run_cli("status", "--db", str(db), timeout=30)
        assert f"courrier: {status['quarantined']} spool records quarantined" in table.stdout, (
            table.stdout
        )
        assert daemon.log().count("ingest failed") == 0
        daemon.stop_cleanly()
    finally:
        daemon.kill()
