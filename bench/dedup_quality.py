"""Dedup quality on the labelled set: URL rules, near-dup pair decisions, archive clusters.

    .venv/bin/python bench/dedup_quality.py [--errors]

Targets: near-dup precision >= 0.97, recall >= 0.90, no false merge from URL rules.
The archive is a throw-away DuckDB file under /tmp.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive.db import writer
from tests.dedup_eval.corpus import build
from tests.dedup_eval.harness import Counts, run, sweep


def _row(name: str, c: Counts) -> str:
    return f"  {name:<28} P {c.precision:5.3f}  R {c.recall:5.3f}   (tp {c.tp}, fp {c.fp}, fn {c.fn}, tn {c.tn})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--errors", action="store_true", help="list every wrong pair decision")
    ap.add_argument("--sweep", action="store_true", help="pair P/R for other thresholds")
    args = ap.parse_args()
    ev = build()
    with (
        tempfile.TemporaryDirectory(dir="/tmp") as tmp,
        writer(Path(tmp) / "dedup_quality.duckdb") as con,
    ):
        rep = run(ev, con)
    print(
        f"labelled set: {len(ev.docs)} texts, {len(ev.text_pairs)} text pairs, {len(ev.url_pairs)} URL pairs"
    )
    print("URL identity (same key?)")
    print(_row("all", rep.url))
    for cat, c in sorted(rep.url_by_cat.items()):
        print(_row(cat, c))
    print(f"  false merges from URL rules: {len(rep.url_false_merges)}")
    for a, b in rep.url_false_merges:
        print(f"    {a}  ==  {b}")
    print("Near-duplicate pairs (LSH candidate and exact check)")
    print(_row("all", rep.pairs))
    for cat, c in sorted(rep.pairs_by_cat.items()):
        print(_row(cat, c))
    print("Archive clusters (same cluster after ingest through find_exact + place_article)")
    print(_row("all", rep.clustered))
    for cat, c in sorted(rep.clustered_by_cat.items()):
        print(_row(cat, c))
    p, r, f = rep.bcubed
    ok, total = rep.earliest_ok
    print(f"  B-cubed precision {p:.3f}, recall {r:.3f}, F1 {f:.3f}")
    print(f"  earliest member right in {ok}/{total} multi-text stories")
    print(f"  place_article: {rep.place_ms:.2f} ms per article (tiny archive)")
    if args.errors:
        print("Wrong pair decisions:")
        for cat, x, y, why in rep.pair_errors:
            print(f"  {cat}: {x} vs {y}: {why}")
    if args.sweep:
        print("Threshold sweep (Jaccard OR containment, number guard kept):")
        for jmin, cmin, c in sweep(ev):
            print(_row(f"J>={jmin:.2f} or C>={cmin:.2f}", c))
    met = rep.pairs.precision >= 0.97 and rep.pairs.recall >= 0.90 and not rep.url_false_merges
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
