"""Reader costs at archive scale: search, count by outlet and day, export of a day, indexing.

Builds a synthetic archive set-based in SQL (default 1,000,000 articles, under /tmp), then
prints each timing beside the same work done the naive way in the same run:

  search           our BM25 index            vs  ILIKE scan of title and text (unranked!)
                                                 and the fts extension's match_bm25
  count/outlet/day articles_per_outlet_day   vs  fetching (outlet, published_at) into Python
  export one day   archive.export (Parquet)  vs  Python loop writing JSONL, non-sargable filter
  index 100 new    index_articles (1 call, and 100 single-article calls as the ingest does)
                                             vs  PRAGMA create_fts_index rebuild

Usage: .venv/bin/python bench/query_scale.py [--size 1000000] [--words 80] [--skip-fts]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.db import connect_write
from archive.export import Selection, export
from archive.query import jsonable, open_archive
from archive.search import _TERM_KEY, index_articles, load_fts, rebuild_index, search

SYLLABLES = ["ka", "lo", "mi", "re", "tu", "sa", "on", "ne", "vi", "po", "ar", "el", "is",
             "ta", "do", "ri", "an", "en", "ou", "ge", "bra", "sto", "pli", "cor"]  # fmt: skip
SUFFIXES = ["", "s", "es", "er", "ent", "ation", "ions", "ing", "en", "ung"]
LANGS = ["fr", "fr", "en", "en", "de", "es", "it", "pt", "nl", "sv"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median wall time of `repeat` runs (first run included: readers open cold)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def build(path: Path, size: int, words: int) -> None:
    """Articles with Zipf-like word choice over stems + inflections, 50 outlets, 1 year."""
    con = connect_write(path)
    sylls = ", ".join(f"'{s}'" for s in SYLLABLES)
    sufs = ", ".join(f"'{s}'" for s in SUFFIXES)
    langs = ", ".join(f"'{s}'" for s in LANGS)
    t0 = time.perf_counter()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""
        CREATE TEMP TABLE vocab AS
        WITH s AS (SELECT unnest([{sylls}]) AS s), f AS (SELECT unnest([{sufs}]) AS f),
        stems AS (SELECT DISTINCT a.s || b.s || coalesce(c.s, '') AS stem
                  FROM s a, s b, (SELECT s FROM s UNION ALL SELECT NULL) c)
        SELECT list(stem || f ORDER BY hash(stem || f)) AS l, count(*) AS n FROM stems, f
    """)
    con.execute(f"""
        INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language,
                              text, word_count, first_seen_at, last_seen_at, version)
        SELECT i, 'outlet' || (i % 50), 'https://o' || (i % 50) || '.example/a/' || i,
               'https://o' || (i % 50) || '.example/a/' || i,
               array_to_string(list_transform(range(8), k -> l[1 + floor(pow(random(), 3) * n)::INT]), ' '),
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((i * 31536000 // {size})::BIGINT),
               ([{langs}])[1 + (hash(i) % {len(LANGS)})::INT],
               array_to_string(list_transform(range({words}), k -> l[1 + floor(pow(random(), 3) * n)::INT]), ' '),
               {words},
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((i * 31536000 // {size})::BIGINT + 600),
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((i * 31536000 // {size})::BIGINT + 600),
               1
        FROM range(1, {size} + 1) t(i), vocab
    """)
    print(f"built {size:,} articles ({words} words each) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    con.execute("BEGIN")
    rebuild_index(con)
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    n = con.execute("SELECT count(*) FROM search_postings").fetchone()
    v = con.execute("SELECT count(DISTINCT term_key) FROM search_postings").fetchone()
    print(
        f"full index build (rebuild_index): {time.perf_counter() - t0:.1f} s, "
        f"{n[0] if n else 0:,} postings, {v[0] if v else 0:,} terms"
    )
    con.close()


def pick_words(con: Any) -> list[str]:
    """Two surface words of middling frequency (a realistic query, not the rarest term)."""
    key = _TERM_KEY.format(stemmer="'french'", word="word")
    rows = con.execute(
        f"""WITH w AS (SELECT DISTINCT unnest(string_split(text, ' ')) AS word FROM articles
                       WHERE language = 'fr' AND id % 997 = 3),
                k AS (SELECT word, {key} AS term_key FROM w)
           SELECT any_value(word), count(*) AS df FROM k JOIN search_postings p USING (term_key)
           GROUP BY term_key ORDER BY abs(df - $target), 1 LIMIT 2""",
        {"target": 5000},
    ).fetchall()
    return [r[0] for r in rows]


def ratio(ours: float, naive: float) -> str:
    return (
        f"{ours * 1000:8.1f} ms vs {naive * 1000:9.1f} ms  -> {naive / ours:7.1f}x faster"
        if ours
        else "n/a"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--words", type=int, default=80, help="words per article text")
    ap.add_argument("--dir", default="/tmp/mediawatch-bench")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the synthetic archive")
    ap.add_argument("--skip-fts", action="store_true", help="skip the create_fts_index comparison")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    db = root / f"archive_{args.size}_{args.words}.duckdb"
    if args.rebuild or not db.exists():
        db.unlink(missing_ok=True)
        build(db, args.size, args.words)
    connect_write(db).close()  # apply any newer migration to a kept archive
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(a shared machine: compare the ratios, measured side by side, more than the times)"
    )

    con = open_archive(db)
    words = pick_words(con)
    q = " ".join(words)
    print(f"\nsearch {q!r}")
    t_ours, _ = timed(lambda: search(con, q, limit=20))
    like = " OR ".join(f"title ILIKE '%{w}%' OR text ILIKE '%{w}%'" for w in words)
    t_like, like_rows = timed(
        lambda: con.execute(f"SELECT id, title FROM articles WHERE {like} LIMIT 20").fetchall()
    )
    t_like_all, n_like = timed(
        lambda: con.execute(f"SELECT count(*) FROM articles WHERE {like}").fetchone()
    )
    print(
        f"  BM25 top 20 (ours, with snippets)     {ratio(t_ours, t_like_all)} than ILIKE full scan "
        f"({n_like[0] if n_like else 0:,} rows)"
    )
    print(
        f"  (ILIKE that stops at the first 20 unranked rows: {t_like * 1000:.1f} ms, {len(like_rows)} rows)"
    )
    t_filt, _ = timed(lambda: search(con, q, outlets=["outlet7"], languages=["fr"], limit=20))
    print(f"  BM25 with --outlet --lang filters      {t_filt * 1000:8.1f} ms")

    print("\ncount by outlet and day")
    t_view, n_view = timed(lambda: len(con.execute(
        "SELECT outlet, day, articles FROM articles_per_outlet_day").fetchall()))  # fmt: skip

    def naive_count() -> int:
        rows = con.execute("SELECT outlet, published_at FROM articles").fetchall()
        return len(Counter((o, p.astimezone(UTC).date()) for o, p in rows))

    t_naive, n_naive = timed(naive_count, repeat=1)
    assert n_view == n_naive, (n_view, n_naive)
    print(
        f"  view articles_per_outlet_day           {ratio(t_view, t_naive)} than counting in Python "
        f"({n_view:,} groups)"
    )
    con.close()

    print("\nexport one day (Parquet, partitioned)")
    day = BASE + timedelta(days=180)
    out = root / "export_day"

    def ours_export() -> int:
        shutil.rmtree(out, ignore_errors=True)
        return export(db, out, "parquet", Selection(since=day, until=day + timedelta(days=1)))

    t_exp, n_exp = timed(ours_export)

    def naive_export() -> int:
        c = open_archive(db)
        cur = c.execute(
            "SELECT * FROM articles WHERE strftime(published_at, '%Y-%m-%d') = ?",
            [day.strftime("%Y-%m-%d")],
        )
        cols = [d[0] for d in cur.description or []]
        n = 0
        with open(root / "export_day_naive.jsonl", "w", encoding="utf-8") as f:
            for row in cur.fetchall():
                f.write(json.dumps({k: jsonable(v) for k, v in zip(cols, row, strict=True)}) + "\n")
                n += 1
        c.close()
        return n

    t_nexp, n_nexp = timed(naive_export)
    assert n_exp == n_nexp, (n_exp, n_nexp)
    print(
        f"  archive.export, {n_exp:,} articles        {ratio(t_exp, t_nexp)} than a Python JSONL loop"
    )

    print("\nindex new articles at this size")
    con = connect_write(db)
    load_fts(con)
    top = con.execute("SELECT max(id) FROM articles").fetchone()
    start = int(top[0] if top else 0) + 1

    def add(n: int) -> list[int]:
        nonlocal start
        ids = list(range(start, start + n))
        start += n
        con.execute(
            """INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language,
                                     text, word_count, first_seen_at, last_seen_at)
               SELECT i, 'outlet1', 'https://n.example/' || i, 'https://n.example/' || i,
                      'Nouvelles élections municipales', now(), 'fr',
                      'Les électeurs votent pour les élections municipales de mars. ' || repeat('texte ', 60),
                      70, now(), now()
               FROM unnest($ids) t(i)""",
            {"ids": ids},
        )
        return ids

    con.execute("BEGIN")
    ids = add(100)
    t0 = time.perf_counter()
    index_articles(con, ids)
    t_batch = time.perf_counter() - t0
    con.execute("COMMIT")
    singles = []
    for _ in range(100):
        con.execute("BEGIN")
        one = add(1)
        t0 = time.perf_counter()
        index_articles(con, one)
        singles.append(time.perf_counter() - t0)
        con.execute("COMMIT")
    t_single = statistics.median(singles)
    con.execute("BEGIN")
    t0 = time.perf_counter()
    index_articles(con, ids[:10])  # re-index existing articles (a new version)
    t_reindex = time.perf_counter() - t0
    con.execute("COMMIT")
    print(f"  index_articles(100 new), one call      {t_batch * 1000:8.1f} ms")
    print(
        f"  index_articles(1 new), median of 100   {t_single * 1000:8.1f} ms  (the ingest's per-article call)"
    )
    print(
        f"  re-index 10 updated articles           {t_reindex * 1000:8.1f} ms  (old postings left for compact_index)"
    )
    if not args.skip_fts:
        t0 = time.perf_counter()
        con.execute(
            "PRAGMA create_fts_index('articles', 'id', 'title', 'text', stemmer='french', overwrite=1)"
        )
        t_fts = time.perf_counter() - t0
        print(
            f"  PRAGMA create_fts_index full rebuild   {t_fts * 1000:8.1f} ms  "
            f"-> 100 new via index_articles is {t_fts / t_batch:,.0f}x cheaper"
        )
        con.close()
        c = open_archive(db)
        t_fq, _ = timed(lambda: c.execute(
            "SELECT id, score FROM (SELECT id, fts_main_articles.match_bm25(id, ?) AS score FROM articles) "
            "WHERE score IS NOT NULL ORDER BY score DESC LIMIT 20", [q]).fetchall())  # fmt: skip
        print(
            f"  (fts match_bm25 top 20 for the same query: {t_fq * 1000:.1f} ms; ours {t_ours * 1000:.1f} ms)"
        )
        c.close()
        con = connect_write(db)
        load_fts(con)
        con.execute("PRAGMA drop_fts_index('articles')")
    c2 = con
    t_after, hits_after = timed(
        lambda: search(c2, "élections municipales", languages=["fr"], limit=5), repeat=1
    )
    assert hits_after and hits_after[0].outlet == "outlet1", (
        "new articles must be searchable at once"
    )
    print(f"  search finds the new articles at once ({t_after * 1000:.1f} ms)")
    con.close()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
