"""CLI start-up bench: `mediawatch query "select 1"` against `python -c "import duckdb"`, the
floor any DuckDB tool pays, run alternately in the same run so machine load weighs on both.

Usage: ``.venv/bin/python bench/startup.py [--runs 15]``. Prints the median wall time of each
and the ratio (the issue's target: at most 2.0x)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from archive.db import writer

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "archive.duckdb"
        with writer(db):
            pass  # a real, migrated archive
        query = [str(BIN / "mediawatch"), "query", "select 1", "--db", str(db)]
        floor = [sys.executable, "-c", "import duckdb"]
        _wall(query), _wall(floor)  # warm the page cache
        ours, base = [], []
        for _ in range(args.runs):
            ours.append(_wall(query))
            base.append(_wall(floor))
    q, d = statistics.median(ours), statistics.median(base)
    print(f"mediawatch query 'select 1': {q * 1000:.0f} ms median of {args.runs}")
    print(f"python -c 'import duckdb':   {d * 1000:.0f} ms median of {args.runs}")
    print(f"ratio: {q / d:.2f}x")


if __name__ == "__main__":
    main()
