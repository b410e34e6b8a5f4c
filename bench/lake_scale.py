"""Lake scale bench (issue 15): commit latency of 50-row batches with 1, 2 and 4 writers, the
ingest rate of real cleaned records through the lake writer with 1, 2 and 4 writers, and the
migrate rate, each beside the file backend measured in the same run.

The ingest: records made once by the real cleaning (tests/lake/archives.py: articles, an
edit, an exact copy, a cross-outlet copy, a 404, per host), split between the writers by
host; the file ingests them all in one process (it allows one writer), one transaction a
batch as the daemon does; each lake writer is a process with its own LakeWriter.

Writers on the lake are processes (one per machine, in production), each with its own
connection; on the file, DuckDB allows one writing process, so its writers are threads of
one process with a cursor each. A commit appends 50 page rows (ids taken from a counter,
about 2 KB of gzip each), as the ingest's short transactions do. The migrate moves an
archive made by the real cleaning and ingest; its file baseline is DuckDB's own
`COPY FROM DATABASE` of the same archive into a new file.

Usage: ``.venv/bin/python bench/lake_scale.py [--commits 30] [--writers 1,2,4] [--copies 20]
[--ingest-copies 4]``
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) or its binaries (tests/pg.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from archive.db import connect_write  # noqa: E402
from archive.lake.connect import connect_lake_write  # noqa: E402
from archive.lake.migrate import migrate_archive  # noqa: E402
from archive.target import LakeTarget, parse_target  # noqa: E402
from bench import lake_sizes  # noqa: E402
from tests import pg  # noqa: E402

ROWS = 50
EXTRA = 20  # record sets the per-article costs are measured over
_INSERT = f"""INSERT INTO pages (id, record_id, run_id, outlet, url, status, fetched_at, size_bytes, html_gz)
SELECT $base + i, md5(($base + i)::VARCHAR), 'bench', 'o' || ($base % 7), 'https://o.example/' || ($base + i),
       200, now(), 2048, repeat('x', 2048)::BLOB FROM range({ROWS}) t(i)"""


def _commits(
    con: duckdb.DuckDBPyConnection, first: int, commits: int
) -> tuple[list[float], float, float]:
    """Milliseconds of each 50-row commit (the first, warming up, not counted), and when the
    counted ones began and ended (a process's start and ATTACH are not commit time)."""
    times = []
    window = time.time()
    for n in range(commits + 1):
        started = time.perf_counter()
        if n == 1:
            window = time.time()
        con.execute("BEGIN")
        con.execute(_INSERT, {"base": first + n * ROWS})
        con.execute("COMMIT")
        if n:
            times.append((time.perf_counter() - started) * 1000)
    return times, window, time.time()


def _lake_writer(url: str, first: int, commits: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    con = connect_lake_write(target)
    try:
        out.put(("ok", _commits(con, first, commits)))
    except duckdb.Error as exc:
        out.put(("failed", str(exc).splitlines()[0]))
    finally:
        con.close()


def lake_commits(
    server: pg.Server, writers: int, commits: int, tmp: Path
) -> tuple[list[float], float, int]:
    """(commit ms, seconds from the first counted commit to the last, failed writers) for
    `writers` processes on a fresh lake."""
    name = server.create_database()
    try:
        url = server.url(name, tmp / f"lake-{writers}")
        target = parse_target(url)
        assert isinstance(target, LakeTarget)
        connect_lake_write(target).close()  # schema made before the clock starts
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_lake_writer, args=(url, w * 10_000_000, commits, out))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        done = [r for kind, r in results if kind == "ok"]
        times = [t for r in done for t in r[0]]
        wall = max(r[2] for r in done) - min(r[1] for r in done) if done else 0.0
        return times, wall, len(results) - len(done)
    finally:
        server.drop_database(name)


def file_commits(writers: int, commits: int, tmp: Path) -> tuple[list[float], float]:
    con = connect_write(tmp / f"file-{writers}.duckdb")
    times: list[float] = []
    lock = threading.Lock()

    def run(w: int) -> None:
        cur = con.cursor()
        mine, begin, end = _commits(cur, w * 10_000_000, commits)
        with lock:
            times.extend(mine)
            windows.append((begin, end))

    windows: list[tuple[float, float]] = []
    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    con.close()
    return times, max(e for _, e in windows) - min(b for b, _ in windows)


def migrate_rate(server: pg.Server, copies: int, tmp: Path) -> None:
    from tests.lake.archives import build_archive

    db = build_archive(tmp / "archive.duckdb", copies=copies)
    counts = duckdb.connect(str(db), read_only=True)
    articles, pages = counts.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM pages)"
    ).fetchone() or (0, 0)
    counts.close()
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    con.execute(f"ATTACH '{tmp / 'copy.duckdb'}' AS dst")
    con.execute("COPY FROM DATABASE src TO dst")
    con.close()
    file_s = time.perf_counter() - started
    name = server.create_database()
    try:
        target = parse_target(server.url(name, tmp / "migrated"))
        assert isinstance(target, LakeTarget)
        started = time.perf_counter()
        result = migrate_archive(db, target)
        lake_s = time.perf_counter() - started
        started = time.perf_counter()
        migrate_archive(db, target)
        again_s = time.perf_counter() - started
    finally:
        server.drop_database(name)
    print(
        f"\nmigrate of {articles} articles, {pages} pages (counts {'match' if result.ok else 'DIFFER'}):"
    )
    print(
        f"  lake {lake_s:.2f} s ({articles / lake_s:.0f} articles/s, {pages / lake_s:.0f} pages/s); "
        f"file copy (COPY FROM DATABASE) {file_s:.2f} s; lake/file x{lake_s / file_s:.1f}; "
        f"a second run (adds nothing) {again_s:.2f} s"
    )


def _lake_ingest(
    url: str, batches: list[list[object]], out: multiprocessing.Queue, ready: Any
) -> None:  # type: ignore[type-arg]
    from archive.lake.ingest import LakeWriter

    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    from archive.lake.claims import Busy

    try:
        with LakeWriter(target) as w:
            w.ingest_records(batches[0])  # type: ignore[arg-type]  # warm: not counted
            ready.wait()  # every writer warm: the clock starts for all at once
            started, cpu = time.time(), time.process_time()
            for records in batches[1:]:
                while True:
                    try:
                        w.ingest_records(records)  # type: ignore[arg-type]
                        break
                    except Busy:  # another writer's batch holds a claim we need: wait, retry
                        time.sleep(0.05)
            out.put((started, time.time(), time.process_time() - cpu))
    except Exception as exc:
        out.put((None, f"{type(exc).__name__}: {exc}", 0.0))
        raise


def _outlets(records: list[object], writer: int) -> list[object]:
    return [{**r, "outlet": f"{r['outlet']}{writer}"} for r in records]  # type: ignore[dict-item]


def ingest_rates(server: pg.Server, per_writer: int, writers: list[int], tmp: Path) -> None:
    """Pages a second through the file's ingest and through 1, 2, 4 lake writers."""
    from archive.ingest import ingest_records
    from tests.lake.archives import archive_batches

    most = max(writers)
    made = archive_batches(copies=most * per_writer + most + EXTRA)  # [start, copies..., end]
    copies, extra = made[1 : -1 - EXTRA], made[-1 - EXTRA : -1]
    warm, work = copies[:most], copies[most:]
    pages = sum(len(b) for b in work)
    con = connect_write(tmp / "ingest.duckdb")
    ingest_records(con, warm[0])  # type: ignore[arg-type]
    started = time.perf_counter()
    for records in work:
        ingest_records(con, records)  # type: ignore[arg-type]
    file_rate = pages / (time.perf_counter() - started)
    con.close()
    print(f"\ningest of {pages} real pages ({len(work)} batches of ~9), pages a second:")
    print(f"  file, one writer: {file_rate:.0f}")
    ctx = multiprocessing.get_context("spawn")
    for n in writers:
        name = server.create_database()
        try:
            url = server.url(name, tmp / f"ingest-lake-{n}")
            target = parse_target(url)
            assert isinstance(target, LakeTarget)
            connect_lake_write(target).close()
            out, ready = ctx.Queue(), ctx.Barrier(n)
            # each writer its own outlets, as leases give each daemon its own
            share = [[_outlets(b, w) for b in [warm[w], *work[w::n]]] for w in range(n)]
            procs = [
                ctx.Process(target=_lake_ingest, args=(url, share[w], out, ready)) for w in range(n)
            ]
            for p in procs:
                p.start()
            spans = [out.get(timeout=900) for _ in procs]
            for p in procs:
                p.join()
            failed = [why for begin, why, _ in spans if begin is None]
            if failed:
                print(f"  lake, {n} writers: failed: {failed[0]}")
                continue
            rate = pages / (max(e for _, e, _ in spans) - min(b for b, _, _ in spans))
            cpu_ms = sum(c for _, _, c in spans) * 1000 / pages
            print(
                f"  lake, {n} writer{'s' if n > 1 else ''}: {rate:.0f} (lake/file x{rate / file_rate:.2f}); "
                f"writer CPU {cpu_ms:.1f} ms a page"
            )
            if n == writers[0]:
                lake_costs(server, name, target, tmp / f"ingest-lake-{n}", extra)
        finally:
            server.drop_database(name)


def _state(server: pg.Server, dbname: str, target: LakeTarget) -> dict[str, int]:
    from archive.lake.connect import connect_lake_read

    con = connect_lake_read(target)
    row = con.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM pages)"
    ).fetchone()
    con.close()
    articles, pages = row if row else (0, 0)
    return {"articles": articles, "pages": pages, "commits": lake_sizes.snapshots(server, dbname),
            **lake_sizes.pg_bytes(server, dbname)}  # fmt: skip


def lake_costs(
    server: pg.Server, dbname: str, target: LakeTarget, data: Path, extra: list[list[object]]
) -> None:
    """What one more article costs a lake: `extra` batches (new hosts, so new articles) through
    one LakeWriter in this process, the differences before and after (an empty lake's tables
    would dominate totals), then Parquet bytes after a compaction writes the inlined rows out."""
    from archive.lake.compact import compact
    from archive.lake.ingest import LakeWriter

    before = _state(server, dbname, target)
    with LakeWriter(target) as w:
        cpu = time.process_time()
        for records in extra:
            w.ingest_records(records)  # type: ignore[arg-type]
        cpu = time.process_time() - cpu
    after = _state(server, dbname, target)
    d = {k: after[k] - before[k] for k in after}
    per = max(d["articles"], 1)
    print(
        f"  one more article ({d['articles']} articles, {d['pages']} pages in {len(extra)} batches, "
        f"one writer): writer CPU {cpu * 1000 / per:.1f} ms ({cpu * 1000 / max(d['pages'], 1):.1f} a page), "
        f"{d['commits'] / len(extra):.1f} catalog commits a batch, {per / max(d['commits'], 1):.2f} articles a commit"
    )
    print("  PostgreSQL bytes an article: " + ", ".join(
        f"{k} {d[k] / per:,.0f}" for k in ("search index", "claims and state", "catalog")))  # fmt: skip
    done = compact(target, keep=timedelta(0), grace=timedelta(0))
    import psycopg

    with psycopg.connect(server.conninfo(dbname), autocommit=True) as con:
        con.execute("VACUUM FULL")  # the flushed rows' space, given back
    total = after["articles"]
    print(
        f"  after a compaction ({done.summary()}) and VACUUM FULL, the whole lake ({total} articles):"
    )
    print(f"    PostgreSQL {lake_sizes.shown(lake_sizes.pg_bytes(server, dbname), total)}")
    print(f"    Parquet {lake_sizes.shown(lake_sizes.parquet_bytes(data), total)}")


def _q(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=30, help="commits per writer")
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument(
        "--copies", type=int, default=20, help="archive size for the migrate (x7 articles)"
    )
    parser.add_argument(
        "--ingest-copies", type=int, default=4, help="record sets (~9 pages) per lake writer"
    )
    args = parser.parse_args()
    server = pg.server()
    try:
        with tempfile.TemporaryDirectory(prefix="lake-scale-") as tmp_dir:
            tmp = Path(tmp_dir)
            print(f"{ROWS}-row commits, {args.commits} per writer, on {os.cpu_count()} cores")
            print(
                f"{'writers':>7}  {'file p50':>9}  {'lake p50':>9}  {'lake p90':>9}  {'lake/file':>9}  "
                f"{'file c/s':>9}  {'lake c/s':>9}  failed"
            )
            for writers in (int(w) for w in args.writers.split(",")):
                f_times, f_wall = file_commits(writers, args.commits, tmp)
                l_times, l_wall, failed = lake_commits(server, writers, args.commits, tmp)
                if not l_times:
                    print(f"{writers:>7}  every lake writer failed")
                    continue
                f50, l50 = statistics.median(f_times), statistics.median(l_times)
                print(
                    f"{writers:>7}  {f50:>7.1f}ms  {l50:>7.1f}ms  {_q(l_times, 90):>7.1f}ms  {l50 / f50:>8.1f}x  "
                    f"{len(f_times) / f_wall:>9.0f}  {len(l_times) / l_wall:>9.0f}  {failed}"
                )
            ingest_rates(server, args.ingest_copies, [int(w) for w in args.writers.split(",")], tmp)
            migrate_rate(server, args.copies, tmp)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
