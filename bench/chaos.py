"""Crash loop: kill -9 the crawl, its CLI or the daemon at random moments, restart, and check
that nothing fetched is lost or doubled and that the archive always opens.

A fake outlet on 127.0.0.1 grows by a few articles every iteration and edits one (its
sitemap lastmod moves, so it is revisited and gets a new version). Each iteration:

1. start `mediawatch crawl` (target crawl) or `mediawatch run` (target daemon) on the same
   archive and kill -9, at a random moment, the CLI, its crawl subprocess, both, or the daemon;
2. check the archive opens read-only and its invariants hold (unreadable otherwise);
3. restart: one uncut `mediawatch crawl` (or a daemon run until a crawl ends ok, then SIGTERM),
   then every article published so far must be archived exactly once (lost / duplicated).

Usage: .venv/bin/python bench/chaos.py [--iterations 5] [--target crawl|daemon|both] [--seed N]
                                       [--workers auto|0|N] [--json] [--lake URL]

--lake: the same on a lake (an empty one, postgresql://USER@HOST:PORT/DBNAME?data=DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.db import ArchiveError, connect_read  # noqa: E402
from archive.spool import ready_segments, spool_dir_for  # noqa: E402
from tests.hostile.web import GrowingOutlet, HostileWeb  # noqa: E402
from tests.procs import alive, children, descendants  # noqa: E402

MEDIAWATCH = Path(sys.executable).parent / "mediawatch"


# -- processes --------------------------------------------------------------------------------


def kill9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


# -- checks -----------------------------------------------------------------------------------

INVARIANTS = {
    # a kill leaves at most a cut last line, never a record the ingest must set aside
    "spool records quarantined": "SELECT count(*) FROM spool_quarantine",
    "articles without their page": "SELECT count(*) FROM articles a LEFT JOIN pages p ON p.id = a.page_id "
    "WHERE p.id IS NULL OR p.article_id <> a.id",
    "canonical URLs with two articles": "SELECT count(*) - count(DISTINCT canonical_url) FROM articles",
    "records ingested twice": "SELECT count(*) - count(DISTINCT record_id) FROM pages",
    "articles with the same text": "SELECT count(*) - count(DISTINCT content_hash) FROM articles",
    "versions inconsistent": "SELECT count(*) FROM articles a WHERE a.version <> 1 + (SELECT count(*) FROM article_versions v "
    "WHERE v.article_id = a.id) OR EXISTS (SELECT 1 FROM article_versions v WHERE v.article_id = a.id "
    "AND v.version >= a.version)",
    "article URLs of missing articles": "SELECT count(*) FROM article_urls u LEFT JOIN articles a ON a.id = u.article_id WHERE a.id IS NULL",
}


def _scalar(con: Any, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _reader(db: Path | str) -> Any:
    if isinstance(db, str):  # a lake: the same SQL on its tables and views
        from archive.lake.connect import open_lake_reader

        return open_lake_reader(db)[0]
    return connect_read(db, retries=100)


def check_archive(db: Path | str, *, idle: bool) -> tuple[dict[str, int], set[str]] | None:
    """Invariant violations and the archived canonical URLs; None when it does not open."""
    if isinstance(db, Path) and not db.exists():
        return {}, set()
    try:
        con = _reader(db)
    except ArchiveError:
        return None
    try:
        violations = {name: _scalar(con, sql) for name, sql in INVARIANTS.items()}
        if idle:
            violations["runs still 'running'"] = _scalar(
                con, "SELECT count(*) FROM crawl_runs WHERE status = 'running'"
            )
        urls = {r[0] for r in con.execute("SELECT canonical_url FROM articles").fetchall()}
    except Exception:
        return None
    finally:
        con.close()
    return {k: v for k, v in violations.items() if v}, urls


# -- one iteration ----------------------------------------------------------------------------


@dataclass
class Figures:
    iterations: int = 0
    expected: int = 0
    archived: int = 0
    lost: int = 0
    duplicated: int = 0
    unreadable: int = 0
    orphans: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class Chaos:
    def __init__(self, workdir: Path, seed: int, workers: str, lake: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.web = HostileWeb().start()
        self.outlet = GrowingOutlet(self.web)
        self.config = workdir / "outlets.toml"
        self.db: Path | str = lake or workdir / "data" / "archive.duckdb"
        if lake:  # this machine's home for the lake (spool, logs), for the CLIs and for us
            os.environ["MEDIAWATCH_LAKE_HOME"] = str(workdir / "lake-home")
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.config.write_text(f"""
[[outlet]]
name = "chaos"
sitemaps = ["{self.web.base}/sitemap.xml"]
article_pattern = "/20\\\\d\\\\d/"
every = "2s"
min_interval = "1s"
max_interval = "4s"
delay = 0
concurrency = 4
""")
        self.env = {
            **os.environ,
            "MEDIAWATCH_WORKERS": workers,
            "MEDIAWATCH_SCRAPY_SETTINGS": json.dumps(
                {"DOWNLOAD_TIMEOUT": 10, "MEDIAWATCH_WORKERS": workers}
            ),
        }
        self.figures = Figures()
        self.crawl_seconds = 6.0

    def close(self) -> None:
        self.web.stop()

    def _popen(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"cli-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            return subprocess.Popen(
                [str(MEDIAWATCH), *args, "--config", str(self.config), "--db", str(self.db)],
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=REPO,
            )
        finally:
            log.close()

    def clean_crawl(self) -> float:
        started = time.monotonic()
        proc = self._popen("crawl")
        proc.wait(timeout=300)
        return time.monotonic() - started

    def _kill(self, what: str) -> None:
        self.figures.kills[what] = self.figures.kills.get(what, 0) + 1

    def cut_crawl(self) -> None:
        proc = self._popen("crawl")
        deadline = time.monotonic() + 60
        while not children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(self.rng.uniform(0.0, self.crawl_seconds))
        victim = self.rng.choice(["crawl subprocess", "cli", "cli and subprocess"])
        tree = descendants(proc.pid)
        crawl = [p for p in tree if p in children(proc.pid)]
        if victim != "cli" and crawl:
            kill9(crawl[0])
        if victim != "crawl subprocess" or not crawl:
            kill9(proc.pid)
        self._kill(victim if crawl else "cli (no crawl subprocess running)")
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill9(proc.pid)
            proc.wait()
        self._reap(tree)

    def cut_daemon(self) -> None:
        proc = self._popen("run")
        time.sleep(self.rng.uniform(0.5, self.crawl_seconds * 2.5))
        tree = descendants(proc.pid)
        if tree and self.rng.random() < 0.3:
            kill9(self.rng.choice(tree))
            self._kill("daemon's crawl subprocess, then the daemon")
            time.sleep(self.rng.uniform(0, 1.0))
            tree = descendants(proc.pid) + tree
        else:
            self._kill("daemon")
        kill9(proc.pid)
        proc.wait()
        self._reap(tree)

    def _reap(self, pids: list[int]) -> None:
        """Crawls die with their parent (PDEATHSIG); any that does not is an orphan."""
        left = wait_gone(pids, 30)
        self.figures.orphans += len(left)
        for pid in left:
            kill9(pid)
        wait_gone(left, 5)

    def daemon_recovery(self) -> None:
        """Restart the daemon, let it finish one crawl, stop it with SIGTERM."""
        con_runs = self._ok_runs()
        proc = self._popen("run")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self._ok_runs() <= con_runs:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill9(proc.pid)
            proc.wait()

    def _ok_runs(self) -> int:
        try:
            con = _reader(self.db)
        except ArchiveError:
            return 0
        try:
            return _scalar(con, "SELECT count(*) FROM crawl_runs WHERE status = 'ok'")
        finally:
            con.close()

    def iteration(self, target: str) -> None:
        self.outlet.publish(self.rng.randint(2, 5))
        if self.outlet.slugs and self.rng.random() < 0.5:
            self.outlet.edit(self.rng)
        (self.cut_crawl if target == "crawl" else self.cut_daemon)()
        after_kill = check_archive(self.db, idle=False)
        if after_kill is None:
            self.figures.unreadable += 1
        else:
            self._add(after_kill[0])
        if target == "crawl":
            self.clean_crawl()
        else:
            self.daemon_recovery()
        result = check_archive(self.db, idle=True)
        f = self.figures
        f.iterations += 1
        if result is None:
            f.unreadable += 1
            return
        violations, urls = result
        self._add(violations)
        expected = {self.web.base.replace("http://", "https://") + s for s in self.outlet.slugs}
        f.expected = len(expected)
        f.archived = len(expected & urls)
        f.lost = len(expected - urls)
        f.duplicated = sum(
            violations.get(k, 0)
            for k in (
                "canonical URLs with two articles",
                "records ingested twice",
                "articles with the same text",
            )
        )
        if ready_segments(spool_dir_for(self.db)):
            self._add({"spool segments left after a clean run": 1})

    def _add(self, violations: dict[str, int]) -> None:
        for k, v in violations.items():
            self.figures.violations[k] = self.figures.violations.get(k, 0) + v


def run(
    iterations: int,
    target: str,
    seed: int,
    workers: str,
    workdir: Path,
    progress: bool = True,
    lake: str | None = None,
) -> Figures:
    started = time.monotonic()
    chaos = Chaos(workdir, seed, workers, lake)
    try:
        chaos.outlet.publish(8)
        # the window in which a kill lands: about one crawl subprocess's life
        chaos.crawl_seconds = max(2.0, chaos.clean_crawl() - 2.0)
        for i in range(iterations):
            t = target if target != "both" else ("crawl" if i % 2 == 0 else "daemon")
            chaos.iteration(t)
            if progress:
                f = chaos.figures
                print(
                    f"iteration {i + 1}/{iterations} ({t}): expected {f.expected}, archived {f.archived}, "
                    f"lost {f.lost}, unreadable {f.unreadable}, violations {f.violations}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        chaos.close()
    chaos.figures.seconds = round(time.monotonic() - started, 1)
    return chaos.figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--target", choices=["crawl", "daemon", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--workers", default="0", help="cleaning workers of each crawl (auto, 0, N)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this directory and keep it"
    )
    parser.add_argument("--lake", metavar="URL", default=None, help="run on this (empty) lake")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = run(args.iterations, args.target, seed, args.workers, args.keep, lake=args.lake)
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            figures = run(
                args.iterations, args.target, seed, args.workers, Path(tmp), lake=args.lake
            )
    if args.json:
        print(json.dumps({"seed": seed, "target": args.target, **asdict(figures)}))
    else:
        on = f", on the lake {args.lake}" if args.lake else ""
        print(f"seed {seed}, target {args.target}{on}, {figures.seconds}s")
        for key in (
            "iterations",
            "expected",
            "archived",
            "lost",
            "duplicated",
            "unreadable",
            "orphans",
        ):
            print(f"  {key:<12} {getattr(figures, key)}")
        print(f"  kills        {figures.kills}")
        print(f"  violations   {figures.violations or 'none'}")
    bad = (
        figures.lost
        or figures.duplicated
        or figures.unreadable
        or figures.violations
        or figures.orphans
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
