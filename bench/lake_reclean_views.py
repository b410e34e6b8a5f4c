"""What a re-clean on a lake costs its readers (archive/lake/reclean.py): removed_blocks and
article_versions became views that take each article version's newest cleaning, so a reader
pays for a join or a window where it read a table or a plainer view. Measured on a lake of
--articles articles (two versions each, 5 removed blocks a version) with --recleaned of them
re-cleaned: each view's full scan against what schema 2 read (the removed blocks' table, now
the log; article_versions' old definition), in the same run.

Usage: ``.venv/bin/python bench/lake_reclean_views.py [--articles 20000] [--recleaned 2000]
[--repeat 5]``. Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) or its binaries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from archive.lake.connect import attach  # noqa: E402
from archive.lake.rows import append  # noqa: E402
from archive.lake.schema import ensure_schema  # noqa: E402
from archive.target import LakeTarget, parse_target  # noqa: E402
from tests import pg  # noqa: E402

QUERIES = {
    "removed_blocks": (
        "SELECT count(*), sum(length(text)) FROM removed_blocks",
        "SELECT count(*), sum(length(text)) FROM removed_block_log",
    ),
    "article_versions": (
        "SELECT count(*), sum(length(text)) FROM article_versions",
        # the view as it was before re-cleans (schema 2): one row per stored text
        "SELECT count(*), sum(length(text)) FROM article_texts t WHERE t.version < "
        "(SELECT max(m.version) FROM article_texts m WHERE m.article_id = t.article_id)",
    ),
}


def fill(con: duckdb.DuckDBPyConnection, articles: int, recleaned: int) -> None:
    """Two versions an article, 5 blocks a version; the first `recleaned` articles' version 1
    re-cleaned once (a new text, 5 new blocks, a recleans row)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    later = start + timedelta(days=30)
    texts: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    for a in range(1, articles + 1):
        for version in (1, 2):
            texts.append({"article_id": a, "version": version, "outlet": "o", "url": f"u{a}",
                          "canonical_url": f"u{a}", "text": "mot " * 300, "first_seen_at": start,
                          "recorded_at": start + timedelta(seconds=version)})  # fmt: skip
            blocks += [{"article_id": a, "version": version, "position": p, "kind": "subscription",
                        "rule": "r", "text": "Abonnez-vous " * 5} for p in range(5)]  # fmt: skip
        if a <= recleaned:
            texts.append({**texts[-2], "recorded_at": later})
            blocks += [{**b, "cleaned_at": later} for b in blocks[-10:-5]]
            marks.append({"article_id": a, "version": 1, "batch": "b", "recleaned_at": later})
    con.execute("BEGIN")
    for table, rows in (("article_texts", texts), ("removed_blocks", blocks), ("recleans", marks)):
        append(con, table, rows)
    con.execute("COMMIT")


def timed(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> float:
    con.execute(sql).fetchall()  # warm: the catalog and the files read once
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--recleaned", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = pg.server()
    name = server.create_database()
    try:
        with tempfile.TemporaryDirectory() as data:
            target = parse_target(server.url(name, data))
            assert isinstance(target, LakeTarget)
            ensure_schema(target)
            con = attach(target, read_only=False)
            try:
                fill(con, args.articles, args.recleaned)
                print(
                    f"{args.articles} articles, {args.recleaned} re-cleaned; median of {args.repeat}"
                )
                for view, (sql, base) in QUERIES.items():
                    v, b = timed(con, sql, args.repeat), timed(con, base, args.repeat)
                    print(
                        f"{view:18} now {v * 1000:7.1f} ms, schema 2 {b * 1000:7.1f} ms: {v / b:5.2f}x"
                    )
            finally:
                con.close()
    finally:
        server.drop_database(name)
        server.stop()


if __name__ == "__main__":
    main()
