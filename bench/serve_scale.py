"""`mediawatch serve` on a big archive: median answer time of its pages over real HTTP,
beside `mediawatch query` / `mediawatch search` of comparable selects in the same run.

Reuses bench/query_scale.py's synthetic archive (1,000,000 articles by default, built if
missing: ~35 s for the rows and ~3 min for the search index on the 2-core machine). The
server is the real command on 127.0.0.1, each request a fresh read session, as in use.
The CLI baseline is a whole process (start, open, query, print): what a user waits for in a
shell. The target is a median under 300 ms for /, /search and /articles/<id>. The search page's
per-day chart is an image of its own (/search/chart.svg), timed on its own line.

Usage: .venv/bin/python bench/serve_scale.py [--size 1000000] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.db import connect_write
from archive.query import open_archive
from bench.query_scale import build, pick_words

MEDIAWATCH = Path(sys.executable).parent / "mediawatch"


def timed_many(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def get(base: str, path: str) -> None:
    with urllib.request.urlopen(base + path, timeout=120) as resp:
        resp.read()
        assert resp.status == 200, (path, resp.status)


def cli(db: Path, *args: str) -> None:
    subprocess.run([str(MEDIAWATCH), *args, "--db", str(db)], check=True, capture_output=True)


def fmt(times: list[float]) -> str:
    med = statistics.median(times) * 1000
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)] * 1000
    return f"median {med:7.1f} ms  p95 {p95:7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--words", type=int, default=80)
    ap.add_argument("--dir", default="/tmp/mediawatch-bench")
    ap.add_argument(
        "--requests", type=int, default=20, help="requests per page (CLI runs: a quarter)"
    )
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    db = root / f"archive_{args.size}_{args.words}.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        build(db, args.size, args.words)
        print(f"archive built in {time.perf_counter() - t0:.0f} s")
    connect_write(db).close()  # apply newer migrations to a kept archive
    con = open_archive(db)
    words = pick_words(con)
    n_articles = con.execute("SELECT count(*) FROM articles").fetchone()
    con.close()
    q = " ".join(words)
    print(
        f"{n_articles[0] if n_articles else 0:,} articles; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (shared machine: compare side by side)"
    )

    proc = subprocess.Popen(
        [str(MEDIAWATCH), "serve", "--port", "0", "--db", str(db)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    m = re.search(r"(http://127\.0\.0\.1:\d+)/", proc.stderr.readline())
    assert m, "serve did not start"
    base = m.group(1)
    rng = random.Random(7)
    ids = [rng.randrange(1, args.size + 1) for _ in range(args.requests)]
    it = iter(ids * 2)
    quoted = urllib.parse.quote(q)
    pages = {
        "/": "/",
        "/?outlet=outlet7&lang=fr": "/?outlet=outlet7&lang=fr",
        f"/search?q={q}": f"/search?q={quoted}",
        f"/search?q={words[0]}&outlet=outlet7": f"/search?q={urllib.parse.quote(words[0])}&outlet=outlet7",
        f"/search/chart.svg?q={q} (its chart)": f"/search/chart.svg?q={quoted}",
        "/articles/<random id>": None,
        "/outlets": "/outlets",
        f"/trends?q={q}": f"/trends?q={quoted}",
    }
    try:
        get(base, "/")  # one warm-up request: the OS page cache, as on a server in use
        print(f"\nmediawatch serve, {args.requests} requests each, over HTTP:")
        results = {}
        for label, path in pages.items():
            fn = (
                (lambda: get(base, f"/articles/{next(it)}"))
                if path is None
                else (lambda p=path: get(base, p))
            )
            results[label] = timed_many(fn, args.requests)
            print(f"  {label:40s} {fmt(results[label])}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    n = max(3, args.requests // 4)
    print(f"\nthe CLI, same archive, same run ({n} runs each, a process per run):")
    latest = (
        "SELECT id, outlet, title, published_at FROM articles ORDER BY published_at DESC LIMIT 50"
    )
    base_cli = {
        "/": timed_many(lambda: cli(db, "query", latest, "--format", "csv"), n),
        "/search": timed_many(lambda: cli(db, "search", q, "--limit", "20", "--format", "csv"), n),
        "/articles/<id>": timed_many(
            lambda: cli(
                db, "query", f"SELECT * FROM articles WHERE id = {next(it)}", "--format", "json"
            ),
            n,
        ),
    }
    print(f"  {'mediawatch query (latest 50)':40s} {fmt(base_cli['/'])}")
    print(f"  {'mediawatch search --limit 20':40s} {fmt(base_cli['/search'])}")
    print(f"  {'mediawatch query (one article by id)':40s} {fmt(base_cli['/articles/<id>'])}")
    print("\npage vs its CLI counterpart (median):")
    for page, cli_key in (
        ("/", "/"),
        (f"/search?q={q}", "/search"),
        ("/articles/<random id>", "/articles/<id>"),
    ):
        ours, theirs = statistics.median(results[page]), statistics.median(base_cli[cli_key])
        verdict = "under" if ours < 0.3 else "OVER"
        print(
            f"  {page:40s} {ours * 1000:7.1f} ms vs {theirs * 1000:7.1f} ms ({theirs / ours:4.1f}x), "
            f"{verdict} the 300 ms target"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
