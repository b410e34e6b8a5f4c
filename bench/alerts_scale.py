"""Alert matching as the archive grows: what the daemon pays after an ingest of 50 articles.

On synthetic archives (bench/query_scale.py's builder), 50 new articles are added and
indexed, then each query is matched over those 50 only the way the daemon does it
(archive.alerts.matches) and the naive way, the `search_articles` macro over the whole
archive filtered to the new ids. Both must give the same articles; the timings are printed
side by side, with the ratio, per archive size.

Usage: .venv/bin/python bench/alerts_scale.py [--sizes 10000,200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.alerts import AlertSpec, matches
from archive.db import connect_write
from archive.search import index_articles, load_fts
from archive.search_syntax import parse_query
from bench.query_scale import build, pick_words

NEW = 50


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10000,200000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/mediawatch-bench-alerts")
    args = ap.parse_args()
    root = Path(args.dir)
    for size in [int(s) for s in args.sizes.split(",")]:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        db = root / f"archive_{size}.duckdb"
        build(db, size, 80)
        con = connect_write(db)
        load_fts(con)
        a, b = pick_words(con)
        con.execute("BEGIN")
        con.execute(
            f"""INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language, text,
                                      word_count, first_seen_at, last_seen_at, version)
                SELECT id + {size}, outlet, url || '/new', canonical_url || '/new', title, published_at, language,
                       text, word_count, first_seen_at, last_seen_at, 1
                FROM articles WHERE id <= {NEW}"""
        )
        index_articles(con, range(size + 1, size + NEW + 1))
        con.execute("COMMIT")
        for q in (f"{a} {b}", f"+{a} -{b}", f"{a[:3]}*"):
            spec = AlertSpec("bench", parse_query(q))
            ours, naive, shown = [], [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = sorted(m[0] for m in matches(con, spec, size, size + NEW, snippets=False))
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                matches(con, spec, size, size + NEW)
                shown.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                want = sorted(
                    r[0]
                    for r in con.execute(
                        "SELECT article_id FROM search_articles(?) WHERE article_id > ?", [q, size]
                    ).fetchall()
                )
                naive.append(time.perf_counter() - t0)
            assert got == want, (q, got, want)
            o, n = min(ours), min(naive)
            print(
                f"{size:>9,} articles  {q!r:28} {len(got):2} of {NEW} new match: "
                f"alerts.matches {o * 1000:7.1f} ms vs search_articles {n * 1000:8.1f} ms ({n / o:5.1f}x); "
                f"with snippets {min(shown) * 1000:.1f} ms"
            )
        con.close()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
