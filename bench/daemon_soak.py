"""Soak the daemon: `mediawatch run` on a fast schedule against fake outlets on 127.0.0.1
that keep publishing, with a concurrent reader in this process. Prints the daemon's
resident memory (and its crawl children's, apart), runs per minute, the reader's latency,
and whether every published article reached the archive exactly once.

    .venv/bin/python bench/daemon_soak.py --minutes 3 --outlets 6 --every 1s

Why: the daemon runs for months; memory must not creep (target: < 10 % growth after the
warm-up) and a user's queries must keep answering while crawls are ingested.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.db import connect_read  # noqa: E402
from tests.fakeweb import FakeWeb  # noqa: E402
from tests.procs import descendants  # noqa: E402

WORDS = [
    "government",
    "council",
    "minister",
    "budget",
    "river",
    "harbour",
    "school",
    "election",
    "market",
    "energy",
    "farmers",
    "hospital",
    "court",
    "police",
    "railway",
    "museum",
    "festival",
    "weather",
    "climate",
    "union",
    "strike",
    "bank",
    "trade",
    "export",
    "village",
    "mayor",
    "report",
    "study",
    "science",
    "university",
    "water",
    "forest",
    "coast",
    "industry",
]


class PublishingOutlet:
    """A site whose feed gains an article every `publish_every` seconds; the feed answers
    304 to a matching If-None-Match, as a well-behaved news site does."""

    def __init__(self, name: str, publish_every: float) -> None:
        self.name = name
        self.publish_every = publish_every
        self.started = time.monotonic()
        self.epoch = time.time()
        self.web = FakeWeb()
        self.web.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
        self.web.add_handler("/feed.xml", self._feed)
        self.web.start()

    def published_at(self, i: int) -> datetime:
        return datetime.fromtimestamp(self.epoch + i * self.publish_every, UTC)

    def published(self) -> int:
        return 1 + int((time.monotonic() - self.started) / self.publish_every)

    def _feed(self, h: BaseHTTPRequestHandler) -> None:
        n = self.published()
        items = "".join(
            f"<item><title>{self.name} story {i}</title><link>{self.web.base}/news/{i}</link>"
            f"<pubDate>{format_datetime(self.published_at(i))}</pubDate></item>"
            for i in range(max(0, n - 20), n)
        )
        body = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{self.name}</title>'
            f"<link>{self.web.base}/</link>{items}</channel></rss>"
        ).encode()
        tag = '"' + hashlib.sha1(str(n).encode()).hexdigest()[:12] + '"'
        if h.headers.get("If-None-Match") == tag:
            h.send_response(304)
            h.send_header("ETag", tag)
            h.end_headers()
            return
        self._send(h, 200, body, "application/rss+xml", {"ETag": tag})

    def article_page(self, i: int) -> bytes:
        rng = random.Random(f"{self.name}-{i}")
        paras = "".join(
            "<p>" + " ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + ".</p>"
            for _ in range(6)
        )
        title = f"{self.name} story {i}: " + " ".join(rng.choice(WORDS) for _ in range(5))
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="{self.published_at(i).isoformat()}">'
            f"</head><body><header><a href='/'>{self.name}</a></header><div class='content'>"
            f"<h1>{title}</h1>{paras}</div><footer>Copyright {self.name}</footer></body></html>"
        ).encode()

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, headers: dict[str, str]
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)


def serve_articles(outlet: PublishingOutlet) -> None:
    """FakeWeb routes are exact paths: register article pages ahead of publication."""
    for i in range(5000):

        def handler(h: BaseHTTPRequestHandler, i: int = i) -> None:
            if i >= outlet.published():
                outlet._send(h, 404, b"<html><body>not yet</body></html>", "text/html", {})
                return
            outlet._send(h, 200, outlet.article_page(i), "text/html; charset=utf-8", {})

        outlet.web.add_handler(f"/news/{i}", handler)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Reader(threading.Thread):
    """A user querying the archive while the daemon writes it."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t = time.monotonic()
            try:
                con = connect_read(self.db)
                con.execute(
                    "SELECT outlet, count(*), max(first_seen_at) FROM articles GROUP BY outlet"
                ).fetchall()
                con.close()
                self.latencies.append(time.monotonic() - t)
            except Exception as exc:  # every failure is a finding
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            self.halt.wait(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--outlets", type=int, default=6)
    parser.add_argument("--every", default="1s", help="schedule of every outlet")
    parser.add_argument(
        "--publish-every", type=float, default=15.0, help="seconds between new articles per outlet"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds (default: a third of the run, max 90)"
    )
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mw-soak-"))
    outlets = [PublishingOutlet(f"soak{i}", args.publish_every) for i in range(args.outlets)]
    for o in outlets:
        serve_articles(o)
    config = work / "outlets.toml"
    config.write_text(
        "[defaults]\ndelay = 0\nconcurrency = 4\n"
        + "".join(
            f'\n[[outlet]]\nname = "{o.name}"\nfeeds = ["{o.web.base}/feed.xml"]\nevery = "{args.every}"\n'
            f'article_pattern = "/news/"\n'
            for o in outlets
        )
    )
    db = work / "archive.duckdb"
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(90.0, duration / 3)
    stderr = open(work / "daemon.stderr", "wb")  # noqa: SIM115 - handed to the daemon
    daemon = subprocess.Popen(
        [
            str(REPO / ".venv/bin/mediawatch"),
            "run",
            "--config",
            str(config),
            "--db",
            str(db),
            "--max-parallel",
            str(args.max_parallel),
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=REPO,
    )
    started = time.monotonic()
    while not db.exists() and time.monotonic() - started < 30:
        time.sleep(0.2)
    reader = Reader(db)
    reader.start()
    samples: list[tuple[float, int, int, int]] = []  # (t, daemon kB, children kB, children)
    try:
        while time.monotonic() - started < duration:
            time.sleep(2.0)
            kids = descendants(daemon.pid)
            sample = (
                time.monotonic() - started,
                rss_kb(daemon.pid),
                sum(rss_kb(k) for k in kids),
                len(kids),
            )
            samples.append(sample)
            if daemon.poll() is not None:
                print(f"daemon exited early with {daemon.returncode}", file=sys.stderr)
                break
    finally:
        t = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
        stop_seconds = time.monotonic() - t
        reader.halt.set()
        reader.join()
        stderr.close()
    elapsed = time.monotonic() - started
    published = {o.name: o.published() for o in outlets}
    con = connect_read(db)
    try:
        runs = con.execute(
            "SELECT status, count(*) FROM crawl_runs GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        per_outlet = dict(
            con.execute("SELECT outlet, count(*) FROM articles GROUP BY 1").fetchall()
        )
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT url FROM pages WHERE article_id IS NOT NULL "
            "AND skip_reason IS NULL AND detail IS NULL GROUP BY url HAVING count(*) > 1)"
        ).fetchone()
        warm_runs = con.execute(
            "SELECT count(*) FROM crawl_runs WHERE started_at >= "
            "(SELECT min(started_at) FROM crawl_runs) + to_seconds(?)",
            [warmup],
        ).fetchone()
    finally:
        con.close()
    total_runs = sum(n for _, n in runs)
    lat = sorted(reader.latencies)

    def mb(kb: int) -> str:
        return f"{kb / 1024:.1f} MB"

    print(
        f"soak: {args.outlets} outlets every {args.every}, {elapsed / 60:.1f} min, work dir {work}"
    )

    def window(lo: float, hi: float) -> list[tuple[float, int, int, int]]:
        return [s for s in samples if lo <= s[0] <= hi] or samples[-1:]

    # RSS is sampled every 2 s, sometimes inside a write session (a DuckDB instance open):
    # each phase reports the median and the minimum of its window, the minimum being what
    # the daemon keeps between sessions.
    phases = {
        "start": window(4, 20),
        "warm-up": window(warmup - 20, warmup + 10),
        "end": window(elapsed - 40, elapsed),
    }
    for name, win in phases.items():
        d = sorted(s[1] for s in win)
        c = sorted(s[2] for s in win)
        print(
            f"  RSS {name:7s} (t={win[0][0]:.0f}-{win[-1][0]:.0f}s): daemon median {mb(d[len(d) // 2])}, "
            f"min {mb(d[0])}; crawl children median {mb(c[len(c) // 2])} in up to {max(s[3] for s in win)} processes"
        )
    timeline = [f"{s[0]:.0f}s {s[1] / 1024:.0f}" for s in samples[::10]]
    print(f"  daemon RSS MB over time: {', '.join(timeline)}")
    warm, end = sorted(s[1] for s in phases["warm-up"]), sorted(s[1] for s in phases["end"])
    if warm and warm[0]:
        print(
            f"  daemon RSS growth after warm-up: median {100 * (end[len(end) // 2] / warm[len(warm) // 2] - 1):+.1f} %, "
            f"min {100 * (end[0] / warm[0] - 1):+.1f} % (peak {mb(max(s[1] for s in samples))}; target < 10 %)"
        )
    print(
        f"  runs: {total_runs} ({', '.join(f'{s} {n}' for s, n in runs)}), "
        f"{60 * total_runs / elapsed:.1f} runs/min overall, "
        f"{60 * (warm_runs[0] if warm_runs else 0) / max(1.0, elapsed - warmup):.1f} runs/min after warm-up"
    )
    if lat:
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        print(
            f"  reader: {len(lat)} queries, median {1000 * statistics.median(lat):.0f} ms, "
            f"p95 {1000 * p95:.0f} ms, max {1000 * lat[-1]:.0f} ms, failures {len(reader.failures)}"
        )
    for failure in reader.failures[:3]:
        print(f"    {failure}")
    archived = sum(per_outlet.values())
    print(
        f"  articles: {archived} archived of {sum(published.values())} published "
        f"(the last minutes' may await the next poll), pages ingested twice: {dupes[0] if dupes else '?'}"
    )
    print(f"  stop: exit {code} in {stop_seconds:.1f}s")
    log = (work / "daemon.stderr").read_text(errors="replace").splitlines()
    for line in log:
        if "archive writer:" in line:
            print("  " + line.split(" INFO ", 1)[-1])
    noisy = [line for line in log if " WARNING " in line or " ERROR " in line]
    print(f"  daemon log: {len(log)} lines, {len(noisy)} warnings/errors")
    for line in noisy[:5]:
        print("    " + line[:200])
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    for o in outlets:
        o.web.stop()
    return 0 if code == 0 and not reader.failures else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
