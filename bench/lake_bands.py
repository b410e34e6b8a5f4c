"""Lake band lookup bench (issue 15): what the near-duplicate step costs a lake batch as
``mediawatch.lsh_bands`` grows, against the same batch on the smallest table of the run.

The table is filled server-side with 42 keys an article (the low 32 bits of a hash, as band
keys are); a batch is 50 new texts of 42 fresh keys each, two of them copies of stored
articles (their keys), so the lookup returns candidates as a real one does. Measured through
the writer's own functions: ``bands.lookup`` (hot keys, holders, heads; candidates' texts are
read from an empty lake) and ``claims.claim`` of the batch's band rows (the lock, the check,
the insert), then ``claims.abandon`` to leave the table as it was.

Usage: ``.venv/bin/python bench/lake_bands.py [--sizes 10000,100000,1000000] [--repeat 15]``
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) or its binaries (tests/pg.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.lake import bands, claims  # noqa: E402
from archive.lake.connect import attach  # noqa: E402
from archive.lake.schema import ensure_schema  # noqa: E402
from archive.target import LakeTarget, parse_target  # noqa: E402
from tests import pg  # noqa: E402

BANDS, BATCH = 42, 50


def fill(con: psycopg.Connection[Any], articles: int, have: int) -> None:
    """Articles have+1..articles, 42 keys each (a deterministic hash of article and band)."""
    con.execute(
        "INSERT INTO mediawatch.lsh_bands (band_key, article_id, batch) "
        "SELECT hashtextextended(a || '-' || b, 7) & 4294967295, a, NULL "
        "FROM generate_series(%s::bigint, %s::bigint) a, generate_series(1, %s) b "
        "ORDER BY 1, 2 ON CONFLICT DO NOTHING",  # in key order: a random-order fill of 1M took 15 min+
        [have + 1, articles, BANDS],
    )
    con.execute("ANALYZE mediawatch.lsh_bands")


def batch_texts(con: psycopg.Connection[Any], articles: int, rng: random.Random) -> list[list[int]]:
    """50 texts' band hashes: 48 fresh, 2 copies of stored articles."""
    texts = [[rng.getrandbits(64) for _ in range(BANDS)] for _ in range(BATCH - 2)]
    for article in rng.sample(range(1, articles + 1), 2):
        rows = con.execute(
            "SELECT hashtextextended(%s || '-' || b, 7) & 4294967295 FROM generate_series(1, %s) b",
            [article, BANDS],
        ).fetchall()
        texts.append([int(r[0]) for r in rows])
    return texts


def measure(target: LakeTarget, articles: int, repeat: int) -> tuple[float, float]:
    """Median ms of one batch's lookup, and of its band claim (lock, check, insert)."""
    rng = random.Random(articles)
    owner = claims.writer_token()
    pgcon = claims.connect(target.libpq(application_name=owner))
    lake = attach(target, read_only=False, application_name=owner)
    lookups, claimed = [], []
    try:
        for _ in range(repeat):
            texts = batch_texts(pgcon, articles, rng)
            t0 = time.perf_counter()
            known = claims.Known(busy=claims.in_flight(pgcon))
            found = bands.lookup(pgcon, lake, known, texts)
            lookups.append((time.perf_counter() - t0) * 1000)
            assert sum(1 for v in found.holders.values() if v) >= BANDS, "copies not found"
            batch = uuid.uuid4().hex
            rows = [
                (k, 10**9 + i, batch) for i, t in enumerate(texts) for k in set(bands.keys_of(t))
            ]
            t0 = time.perf_counter()
            claims.claim(pgcon, batch, owner, {"lsh_bands": rows}, found.looked)
            claimed.append((time.perf_counter() - t0) * 1000)
            claims.abandon(pgcon, batch)
    finally:
        lake.close()
        pgcon.close()
    return statistics.median(lookups), statistics.median(claimed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="articles in the table")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    server = pg.server()
    name = server.create_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            target = parse_target(server.url(name, Path(tmp) / "lake"))
            assert isinstance(target, LakeTarget)
            ensure_schema(target)
            con = claims.connect(target.libpq())
            print(f"a batch of {BATCH} texts ({BATCH * BANDS} band keys), median of {args.repeat}:")
            print(
                f"{'articles':>10} {'rows':>11} {'fill s':>7} {'lookup ms':>10} {'claim ms':>9} {'ratio':>12}"
            )
            have, base = 0, None
            for size in sizes:
                t0 = time.perf_counter()
                fill(con, size, have)
                filled, have = time.perf_counter() - t0, size
                n = con.execute("SELECT count(*) FROM mediawatch.lsh_bands").fetchone()
                lookup, claim = measure(target, size, args.repeat)
                base = base or (lookup, claim)
                print(
                    f"{size:>10} {n[0] if n else 0:>11} {filled:>7.1f} {lookup:>10.1f} {claim:>9.1f} "
                    f"{lookup / base[0]:>5.2f}x/{claim / base[1]:.2f}x"
                )
            con.close()
    finally:
        server.drop_database(name)
        server.stop()


if __name__ == "__main__":
    main()
