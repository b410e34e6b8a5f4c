"""Ingest cost per article as the archive grows: 10k, 100k, 1M articles.

    .venv/bin/python bench/dedup_scale.py [--sizes 10k,100k,1M] [--batch 500] [--txn 50]
                                          [--mode dedup|ingest|both] [--explain]

For each size an archive is built under /tmp with set-based SQL (articles, article_urls,
pages, clusters and 42 band rows per article; 2,000 of the articles are real generated
texts with real MinHash bands, the rest filler with random band hashes), indexes created
(archive.dedup.ensure_indexes), then a batch of new articles (40 % edited copies of the real
ones, 5 % exact same-outlet duplicates, the rest new stories) is placed in transactions of
``--txn``, and articles per second are printed with their ratio to the smallest size.

Modes: ``dedup`` times what this module owns, as the ingest calls it: find_exact, the article
INSERT, place_article and add_url. ``ingest`` times the lead's archive.ingest.ingest_records
on synthetic spool records (pages, full-text indexing, boilerplate stats too; the search
tables are not bulk-filled: they have no index, so their appends do not grow with the archive;
paragraph_stats is, five rows an article as the ingest writes them).

Rates are per CPU-second of this process (all DuckDB threads included), not wall time: the
bench machine is shared, and CPU time is what one article costs whatever else runs.
In ``ingest`` mode every ``--session-txns`` transactions are one real write session (open,
schema check, transactions, close), as the daemon's writer closes the archive every cycle so
readers can open it. Checkpoints follow the writer's policy (archive.db), inside the timing:
at the end of every session up to DEFER_CHECKPOINT_ARTICLES articles, above that at the end of
the session that takes the log past CHECKPOINT_WAL; the idle-time checkpoint of an empty spool is not part of a backlog
and is not timed. ``dedup`` mode runs each batch in one connection (one session).

Before the timing, the band index's open cost is printed apart: rebuilt from lsh_bands (the
file written), then mapped from its file by a new process, as each ``mediawatch crawl`` does.

Targets (issue #17): the 1M rate >= 0.8 x the 10k rate, median of 3; <= 8 ms CPU an article.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from archive import bandindex, bandstore, batch, dedup
from archive.batch import CONTENT_KEY_SQL, content_key
from archive.db import writer
from pipelines.fingerprint import BANDS, content_hash, minhash_bands

SEEDS = 2000
OUTLETS = 200
VOCAB = [f"w{n}" for n in range(20000)]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def _text(rng: random.Random, words: int) -> str:
    """Zipf-ish random words in paragraphs: unrelated texts share almost no 5-shingle."""
    toks = [
        VOCAB[
            min(int(rng.paretovariate(1.1)) - 1, len(VOCAB) - 1)
            if rng.random() < 0.5
            else rng.randrange(len(VOCAB))
        ]
        for _ in range(words)
    ]
    paras = [" ".join(toks[i : i + 60]) for i in range(0, len(toks), 60)]
    return "\n\n".join(paras)


def _edit(rng: random.Random, text: str) -> str:
    paras = text.split("\n\n")
    choice = rng.randrange(3)
    if choice == 0:  # cut to half
        return "\n\n".join(paras[: max(1, len(paras) // 2)])
    if choice == 1:  # new headline
        return "headline " + " ".join(rng.sample(VOCAB, 8)) + "\n\n" + text
    paras.insert(1, " ".join(rng.sample(VOCAB, 40)))  # a local paragraph
    return "\n\n".join(paras)


def make_workload(batch: int, seed: int = 11) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same real seed articles and the same new batch for every archive size."""
    rng = random.Random(seed)
    seeds: list[dict[str, Any]] = []
    for n in range(SEEDS):
        text = _text(rng, rng.randint(150, 500))
        seeds.append(
            {
                "outlet": f"outlet-{n % OUTLETS}",
                "url": f"https://seed.example/{n}",
                "text": text,
                "published_at": T0 + timedelta(minutes=n),
            }
        )
    new: list[dict[str, Any]] = []
    for n in range(batch):
        r = rng.random()
        if r < 0.05:
            s = seeds[rng.randrange(SEEDS)]
            text, outlet = str(s["text"]), str(s["outlet"])
        elif r < 0.45:
            text, outlet = (
                _edit(rng, str(seeds[rng.randrange(SEEDS)]["text"])),
                f"outlet-{rng.randrange(OUTLETS)}",
            )
        else:
            text, outlet = _text(rng, rng.randint(150, 500)), f"outlet-{rng.randrange(OUTLETS)}"
        new.append(
            {
                "outlet": outlet,
                "url": f"https://new.example/{n}",
                "text": text,
                "published_at": T0 + timedelta(days=400, minutes=n),
            }
        )
    for d in seeds + new:
        d["content_hash"] = content_hash(str(d["text"]))
        d["bands"] = minhash_bands(str(d["text"]))
    return seeds, new


def build_archive(path: Path, size: int, seeds: list[dict[str, Any]], words: int) -> float:
    """Bulk-fill an archive of `size` articles with set-based SQL; returns seconds spent."""
    t = time.perf_counter()
    tmp = path.parent
    with open(tmp / "seeds.jsonl", "w", encoding="utf-8") as fh:
        for d in seeds:
            fh.write(
                json.dumps(
                    {
                        "outlet": d["outlet"],
                        "url": d["url"],
                        "text": d["text"],
                        "hash": d["content_hash"],
                        "published": d["published_at"].isoformat(),
                    }
                )
                + "\n"
            )
    with open(tmp / "seed_bands.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for n, d in enumerate(seeds):
            for b, h in enumerate(d["bands"]):
                w.writerow([b, h, n])
    with writer(path) as con:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO articles (outlet, url, canonical_url, text, content_hash, content_key, "
            "published_at, word_count, first_seen_at, last_seen_at) "
            f"SELECT outlet, url, url, text, content_hash, {CONTENT_KEY_SQL}, published::TIMESTAMPTZ, "
            "0, ?, ? FROM (SELECT *, hash AS content_hash FROM read_json(?, format = "
            "'newline_delimited', columns = {'outlet': 'VARCHAR', 'url': 'VARCHAR', 'text': "
            "'VARCHAR', 'hash': 'VARCHAR', 'published': 'VARCHAR'}))",
            [T0, T0, str(tmp / "seeds.jsonl")],
        )
        # Filler: pseudo-random words, `words` per article, distinct hashes and URLs.
        con.execute(
            f"""
            INSERT INTO articles (outlet, url, canonical_url, text, content_hash, content_key,
                                  published_at, word_count, first_seen_at, last_seen_at)
            SELECT 'outlet-' || (i % ?), 'https://bulk.example/' || i, 'https://bulk.example/' || i,
                   array_to_string(list_transform(range(?), x -> 'w' || (hash(i * 7919 + x) % 20000)), ' '),
                   content_hash, {CONTENT_KEY_SQL}, ?::TIMESTAMPTZ - to_seconds(i), ?, ?, ?
            FROM (SELECT i, md5(i::VARCHAR) AS content_hash FROM range(?) t(i))
            """,
            [OUTLETS, words, T0, words, T0, T0, max(size - len(seeds), 0)],
        )
        con.execute("UPDATE articles SET cluster_id = id")
        con.execute("INSERT INTO clusters SELECT id, id, published_at, 1 FROM articles")
        con.execute(
            "INSERT INTO article_urls SELECT canonical_url, id, 'canonical', first_seen_at FROM articles"
        )
        con.execute(
            "INSERT INTO pages (record_id, outlet, url, final_url, status, fetched_at, article_id) "
            "SELECT md5(id::VARCHAR), outlet, url, url, 200, first_seen_at, id FROM articles"
        )
        # Seed bands are real; the first SEEDS ids are the seeds, in CSV order.
        con.execute(
            "INSERT INTO lsh_bands SELECT band, hash, n + (SELECT min(id) FROM articles) "
            "FROM read_csv(?, header = false, delim = ',', "
            "columns = {'band': 'SMALLINT', 'hash': 'UBIGINT', 'n': 'BIGINT'})",
            [str(tmp / "seed_bands.csv")],
        )
        con.execute(
            "INSERT INTO lsh_bands SELECT b::SMALLINT, hash(a.id * 64 + b)::UBIGINT, a.id "
            "FROM articles a, range(?) r(b) WHERE a.url LIKE 'https://bulk.example/%'",
            [BANDS],
        )
        # Learned-boilerplate counts, as the ingest records them: the first 2 and last 3
        # paragraphs of each article (archive/boilerplate.py), one of them its outlet's footer.
        con.execute(
            "INSERT INTO paragraph_stats (para_key, outlet, para_hash, articles, first_seen_at, last_seen_at, sample) "
            "SELECT outlet || ':' || h, outlet, h, 1, first_seen_at, first_seen_at, 'paragraph ' || id || ' ' || k "
            "FROM (SELECT *, substr(md5(id::VARCHAR || '-' || k), 1, 16) AS h FROM articles, range(4) r(k))"
        )
        con.execute(
            "INSERT INTO paragraph_stats (para_key, outlet, para_hash, articles, first_seen_at, last_seen_at, sample) "
            "SELECT outlet || ':' || substr(md5(outlet), 1, 16), outlet, substr(md5(outlet), 1, 16), count(*), "
            "min(first_seen_at), max(first_seen_at), 'footer of ' || outlet FROM articles GROUP BY outlet"
        )
        con.execute("COMMIT")
        dedup.ensure_indexes(con)
        con.execute("CHECKPOINT")
    return time.perf_counter() - t


def _time_dedup(
    con: duckdb.DuckDBPyConnection, new: list[dict[str, Any]], txn: int
) -> tuple[float, dict[str, int]]:
    outcomes = {"exact": 0, "near": 0, "new": 0}
    now = T0 + timedelta(days=500)
    t = time.process_time()
    for k in range(0, len(new), txn):
        con.execute("BEGIN")
        for d in new[k : k + txn]:
            exact = dedup.find_exact(con, d["outlet"], d["content_hash"])
            if exact is not None:
                dedup.add_url(con, d["url"], exact, "alias", now)
                dedup.record_decision(
                    con,
                    dedup.Decision(exact, exact, "exact", 1.0, f"same text under {d['url']}"),
                    now,
                )
                outcomes["exact"] += 1
                continue
            row = con.execute(
                "INSERT INTO articles (outlet, url, canonical_url, text, content_hash, content_key, "
                "published_at, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                [
                    d["outlet"],
                    d["url"],
                    d["url"],
                    d["text"],
                    d["content_hash"],
                    content_key(d["content_hash"]),
                    d["published_at"],
                    now,
                    now,
                ],
            ).fetchone()
            assert row is not None
            decisions = dedup.place_article(
                con,
                int(row[0]),
                outlet=d["outlet"],
                text=d["text"],
                bands=d["bands"],
                published_at=d["published_at"],
                now=now,
            )
            dedup.add_url(con, d["url"], int(row[0]), "canonical", now)
            outcomes["near" if decisions else "new"] += 1
        con.execute("COMMIT")  # one session: writer() checkpoints at its end (archive.db policy)
    return time.process_time() - t, outcomes


def _records(new: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    out = []
    for n, d in enumerate(new):
        out.append(
            {
                "type": "page",
                "record_id": f"{tag}-{n}",
                "run_id": "bench",
                "outlet": d["outlet"],
                "url": d["url"],
                "final_url": d["url"],
                "redirect_urls": [],
                "status": 200,
                "content_type": "text/html",
                "fetched_at": (T0 + timedelta(days=500)).isoformat(),
                "html_gz_b64": None,
                "size_bytes": 0,
                "hints": {},
                "skip_reason": None,
                "detail": None,
                "article": {
                    "title": d["text"][:40],
                    "text": d["text"],
                    "published_at": d["published_at"].isoformat(),
                    "language": "en",
                    "word_count": len(d["text"].split()),
                    "blocks": [],
                },
                "removed_blocks": [],
                "content_hash": d["content_hash"],
                "bands": d["bands"],
                "key": d["url"],
                "url_aliases": [],
                "cross_site_canonical": None,
                "extractor_version": "bench",
                "para_hashes": [
                    (hashlib.md5(f"{tag}-{n}-{k}".encode()).hexdigest()[:16], f"paragraph {k}")
                    for k in range(4)
                ]
                + [
                    (hashlib.md5(d["outlet"].encode()).hexdigest()[:16], f"footer of {d['outlet']}")
                ],
            }
        )
    return out


def _time_ingest(
    path: Path, new: list[dict[str, Any]], txn: int, tag: str, ckpt: int
) -> tuple[float, dict[str, int]]:
    """As the daemon does it: each write session opens the archive (and checks its schema),
    ingests ``ckpt`` transactions and closes it. Open and close are timed."""
    from archive.ingest import ingest_records

    records = _records(new, tag)
    outcomes: dict[str, int] = {}
    per_session = txn * max(ckpt, 1)
    t = time.process_time()
    for s in range(0, len(records), per_session):
        with writer(path) as con:
            for k in range(s, min(s + per_session, len(records)), txn):
                res = ingest_records(con, records[k : k + txn])
                for key, v in res.outcomes.items():
                    outcomes[key] = outcomes.get(key, 0) + v
    return time.process_time() - t, outcomes


def _explain(con: duckdb.DuckDBPyConnection, d: dict[str, Any]) -> None:
    import re

    some = [r[0] for r in con.execute("SELECT id FROM articles USING SAMPLE 10 ROWS").fetchall()]
    plans = [
        (
            "band rows since",
            "SELECT hash, article_id FROM lsh_bands WHERE article_id > ? ORDER BY hash",
            [con.execute("SELECT max(article_id) - 1 FROM lsh_bands").fetchone()[0]],
        ),  # type: ignore[index]
        ("candidate rows", batch.CANDIDATE_ROWS.format(ids=", ".join(map(str, some))), []),
        (
            "find_exact",
            "SELECT id, outlet FROM articles WHERE content_hash = ?",
            [d["content_hash"]],
        ),
        (
            "ingest key lookup",
            "SELECT article_id FROM article_urls WHERE url IN (?, ?) LIMIT 1",
            [d["url"], d["url"] + "/x"],
        ),
    ]
    for name, sql, params in plans:
        plan = con.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
        scans = re.findall(r"Type: (Index Scan|Sequential Scan)", plan)
        scanned = re.findall(r"(\d[\d,]*) [Rr]ows", plan)
        scans.append(f"rows at scan {scanned[-1] if scanned else '?'}")
        total = re.search(r"Total Time: ([0-9.]+s)", plan)
        print(f"    {name}: {', '.join(scans)}; {total.group(1) if total else '?'}")


_OPEN_IN_A_NEW_PROCESS = """
import sys, time
from archive import bandindex
from archive.db import writer
t = time.perf_counter()
with writer(sys.argv[1]) as con:
    w = time.perf_counter()
    index = bandindex.band_index(con)
    b = time.perf_counter()
print(f"{w - t:.3f} {b - w:.3f} {bandindex.STATS['full_loads']} {bandindex.STATS['rows_read']} {index.nbytes}")
"""


def _band_open_figures(path: Path) -> None:
    """What a writer pays for the band index when it opens the archive: rebuilt from lsh_bands
    (no file yet: the table sorted, then the file written) and mapped from the file, the
    latter in a new process as each `mediawatch crawl` is. Wall time, page cache warm."""
    band = bandstore.band_file(path)
    band.unlink(missing_ok=True)
    dedup.reset_band_indexes()
    with writer(path) as con:
        t = time.perf_counter()
        index = dedup._band_index(con)
        rebuilt = time.perf_counter() - t
        n_rows = index.rows
    saved = index.last_save_seconds
    dedup.reset_band_indexes()
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _OPEN_IN_A_NEW_PROCESS, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout.split()
        runs.append((float(out[1]), float(out[0]), int(out[2]), int(out[3]), int(out[4])))
    persisted, opened, full, read, held = sorted(runs)[1]
    per_article = saved / max(bandindex.PERSIST_MIN_ROWS, n_rows // bandindex.PERSIST_SHARE) * BANDS
    print(
        f"    band index ({n_rows:,} rows, file {band.stat().st_size / 1e6:,.0f} MB): rebuilt from lsh_bands "
        f"in {rebuilt:.1f} s ({rebuilt - saved:.1f} s load and sort, {saved:.1f} s file write, "
        f"{per_article * 1000:.3f} ms/article when amortised over the rows between writes); "
        f"a new process maps it in {persisted:.2f} s (median of 3; archive open {opened:.2f} s, "
        f"full loads {full}, rows read {read:,}, {held / 1e6:.0f} MB in process memory)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1M")
    ap.add_argument("--batch", type=int, default=500, help="new articles timed per size")
    ap.add_argument("--txn", type=int, default=50, help="articles per transaction")
    ap.add_argument("--words", type=int, default=120, help="words per filler article")
    ap.add_argument("--mode", choices=["dedup", "ingest", "both"], default="both")
    ap.add_argument(
        "--session-txns", type=int, default=1, help="transactions per write session in ingest mode"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs per size (the median is kept)"
    )
    ap.add_argument("--dir", default="/tmp/mediawatch-dedup-scale")
    ap.add_argument("--keep", action="store_true", help="keep the archives")
    ap.add_argument("--explain", action="store_true", help="print index use of the hot queries")
    args = ap.parse_args()
    sizes = [_parse_size(s) for s in args.sizes.split(",")]
    modes = ["dedup", "ingest"] if args.mode == "both" else [args.mode]
    if "ingest" in modes:
        try:
            from archive.ingest import ingest_records  # noqa: F401
        except ImportError:
            print("archive.ingest.ingest_records not available: timing dedup only")
            modes = ["dedup"]
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    seeds, new = make_workload(args.batch * args.repeat * len(modes))
    print(
        f"workload: {SEEDS} real seed texts, {len(new)} new articles, {args.txn} per transaction, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    rates: dict[str, dict[int, float]] = {m: {} for m in modes}
    for size in sizes:
        work = base / f"{size}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        path = work / "archive.duckdb"
        built = build_archive(path, size, seeds, args.words)
        mb = path.stat().st_size / 1e6
        print(
            f"{size:>9,} articles: built in {built:.0f} s, {mb:,.0f} MB on disk "
            f"({mb * 1e6 / size / 1e3:.1f} kB/article, filler {args.words} words)"
        )
        chunk = 0
        _band_open_figures(path)
        if args.explain:
            with writer(path) as con:
                _explain(con, new[0])
        for mode in modes:
            runs = []
            for rep in range(args.repeat):
                part = new[chunk * args.batch : (chunk + 1) * args.batch]
                chunk += 1
                if mode == "dedup":
                    with writer(path) as con:
                        secs, outcomes = _time_dedup(con, part, args.txn)
                else:
                    secs, outcomes = _time_ingest(
                        path, part, args.txn, f"{size}-{rep}", args.session_txns
                    )
                runs.append(len(part) / max(secs, 1e-9))
            rate = statistics.median(runs)
            rates[mode][size] = rate
            first = rates[mode][sizes[0]]
            print(
                f"    {mode:<6} {rate:7.1f} articles per CPU-second ({1000 / rate:5.1f} ms CPU/article, median; runs "
                f"{', '.join(f'{r:.1f}' for r in runs)}) "
                f"= {rate / first:.2f}x the {sizes[0]:,} rate; last batch {outcomes}"
            )
        mb_after = path.stat().st_size / 1e6
        print(f"    archive after the batches: {mb_after:,.0f} MB")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ok = True
    for mode in modes:
        r = rates[mode]
        if len(r) > 1:
            ratio = r[sizes[-1]] / r[sizes[0]]
            ok = ok and ratio >= 0.8
            print(
                f"{mode}: {sizes[-1]:,} vs {sizes[0]:,}: {ratio:.2f}x (target >= 0.8); "
                f"{1000 / r[sizes[-1]]:.1f} ms CPU/article at {sizes[-1]:,} (target <= 8)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
