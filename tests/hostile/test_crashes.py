"""kill -9 at random moments of the crawl subprocess, of `mediawatch crawl` (the ingest
writer) and of the daemon: after each restart the archive opens, its invariants hold, and
every article published is archived exactly once. bench/chaos.py is the loop; here a few
iterations of it run as a real subprocess, and its figures are the assertions."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.spool import read_segment, ready_segments, spool_dir_for
from tests.conftest import REPO, crawlproc_command
from tests.hostile.conftest import crawl_env, rows
from tests.hostile.web import GrowingOutlet, HostileWeb


@pytest.mark.parametrize("target, iterations", [("crawl", 2), ("daemon", 1)])
def test_kill_9_loses_and_doubles_nothing(target: str, iterations: int) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "chaos.py"),
            "--iterations",
            str(iterations),
            "--target",
            target,
            "--seed",
            "7",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["iterations"] == iterations
    assert figures["expected"] > 8
    assert (figures["lost"], figures["duplicated"], figures["unreadable"], figures["orphans"]) == (
        0,
        0,
        0,
        0,
    ), figures
    assert figures["violations"] == {}, figures
    assert figures["archived"] == figures["expected"]
    assert done.returncode == 0, done.stderr[-2000:]


# -- kill -9 of the single writer in the middle of its transactions -------------------------

DRAIN = "import sys; from archive.ingest import drain_spool; drain_spool(sys.argv[1], pause=0)"
# One segment per write session: twenty opens, commits and closes per process, so kills land
# in every phase of a session (open and log replay, transaction, commit, close, the idle
# checkpoint at the end); "ready" marks the end of the imports.
DRAIN_BY_SESSION = (
    "import sys, time; from archive.ingest import ingest_spool; print('ready', flush=True)\n"
    "while ingest_spool(sys.argv[1], time_budget=0).segments: time.sleep(0.05)"
)


@pytest.mark.parametrize("sessions", ["one drain", "one session a segment"])
def test_kill_9_of_the_ingest_mid_transaction_is_replayed_exactly_once(
    tmp_path: Path, sessions: str
) -> None:
    """A real crawl's spool, cut into one segment per record (one transaction each), ingested
    by a process killed -9 again and again at random moments: every record lands once."""
    web = HostileWeb().start()
    try:
        outlet = GrowingOutlet(web)
        outlet.publish(20)
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "chaos"\nsitemaps = ["{web.base}/sitemap.xml"]\n'
            "delay = 0\nconcurrency = 8\n"
        )
        db = tmp_path / "archive.duckdb"
        crawl = subprocess.run(
            crawlproc_command(config, db, "chaos"),
            capture_output=True,
            text=True,
            timeout=180,
            cwd=REPO,
            env=crawl_env(),
        )
        assert crawl.returncode == 0, crawl.stderr[-2000:]
    finally:
        web.stop()
    spool = spool_dir_for(db)
    records = [r for seg in ready_segments(spool) for r in read_segment(seg)]
    for seg in list(spool.iterdir()):
        seg.unlink()
    for i, record in enumerate(records):
        (spool / f"r1.chaos-{i + 1:06d}.jsonl").write_text(json.dumps(record) + "\n")
    pages = [r for r in records if r.get("type") == "page"]
    assert len(pages) == 20

    rng = random.Random(3)
    kills = 0
    for _ in range(15):
        if not ready_segments(spool):
            break
        if sessions == "one drain":
            proc = subprocess.Popen([sys.executable, "-c", DRAIN, str(db)], cwd=REPO)
            time.sleep(
                rng.uniform(0.4, 2.0)
            )  # imports take most of a second: kills land mid-ingest
        else:
            proc = subprocess.Popen(
                [sys.executable, "-c", DRAIN_BY_SESSION, str(db)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run([sys.executable, "-c", DRAIN, str(db)], check=True, cwd=REPO, timeout=120)
    assert (
        kills >= 1
    )  # how many kills land depends on the machine's speed; each one is checked below
    assert not ready_segments(spool)
    assert rows(db, "SELECT count(*), count(DISTINCT record_id) FROM pages") == [(20, 20)]
    assert rows(db, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [(20, 20)]
    assert rows(
        db,
        "SELECT count(*) FROM articles a LEFT JOIN pages p ON p.id = a.page_id "
        "WHERE p.article_id IS DISTINCT FROM a.id",
    ) == [(0,)]
    assert rows(db, "SELECT status, articles_new FROM crawl_runs") == [("ok", 20)], (
        "counted once, too"
    )
    assert not (spool / "quarantine").exists()
