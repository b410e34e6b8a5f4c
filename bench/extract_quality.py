"""Extraction quality bench on the Zyte article-extraction set.

Prints token-shingle F1 / precision / recall and ms/page of our
``extract_article(...)["text"]`` beside plain ``trafilatura.extract(html)`` on the
same pages in the same run, so a regression in our wrapper shows up at once.

Usage: ``.venv/bin/python bench/extract_quality.py [--limit N] [--data DIR] [--worst K]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "bench" / "zyte"

_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    """Multiset of overlapping n-token shingles (``\\w+`` tokens, case kept).

    A text shorter than n tokens yields one shingle of all its tokens, so short
    but non-empty texts still count (and an empty text yields nothing).
    """
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def page_scores(pred: str, truth: str) -> tuple[float | None, float | None]:
    """(precision, recall) for one page; None where the side is empty (not averaged)."""
    p, t = shingles(pred), shingles(truth)
    tp = sum((p & t).values())
    precision = tp / sum(p.values()) if p else None
    recall = tp / sum(t.values()) if t else None
    return precision, recall


def corpus_scores(pairs: Iterable[tuple[str, str]]) -> tuple[float, float, float]:
    """(F1, P, R): P averaged over non-empty predictions, R over non-empty truths,
    F1 the harmonic mean of the two averages (the benchmark's definition)."""
    ps: list[float] = []
    rs: list[float] = []
    for pred, truth in pairs:
        p, r = page_scores(pred, truth)
        if p is not None:
            ps.append(p)
        if r is not None:
            rs.append(r)
    precision = sum(ps) / len(ps) if ps else 0.0
    recall = sum(rs) / len(rs) if rs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def load_pages(data: Path, limit: int | None) -> list[tuple[str, str, str, str]]:
    """[(id, url, html, truth)] in a stable order."""
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for pid in sorted(truth)[: limit or None]:
        raw = gzip.decompress((data / "html" / f"{pid}.html.gz").read_bytes())
        out.append(
            (pid, truth[pid]["url"], raw.decode("utf-8", "replace"), truth[pid]["articleBody"])
        )
    return out


def run_interleaved(
    systems: dict[str, Callable[[str, str], str]], pages: list[tuple[str, str, str, str]]
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Predicted texts and mean CPU ms/page per system. CPU time, not wall time, and
    systems taking turns on each page keep a busy shared machine from skewing the
    comparison (warm them up first)."""
    preds: dict[str, list[str]] = {name: [] for name in systems}
    spent = dict.fromkeys(systems, 0.0)
    for _pid, url, html, _truth in pages:
        for name, fn in systems.items():
            start = time.process_time()
            text = fn(html, url) or ""
            spent[name] += time.process_time() - start
            preds[name].append(text)
    return preds, {name: spent[name] * 1000 / len(pages) for name in systems}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N pages")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--worst", type=int, default=0, help="list the K pages where ours loses most")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))
    import trafilatura

    from pipelines.extract import EXTRACTOR_VERSION, extract_article

    pages = load_pages(args.data, args.limit)
    truths = [p[3] for p in pages]
    kinds: Counter[str] = Counter()
    date_sources: Counter[str] = Counter()

    def ours(html: str, url: str) -> str:
        article = extract_article(html, url)
        kinds[article["page_kind"]] += 1
        date_sources[str(article["date_source"])] += 1
        return str(article["text"])

    systems: dict[str, Callable[[str, str], str]] = {
        "plain trafilatura.extract (defaults)": lambda html, url: trafilatura.extract(html) or "",
        "plain, include_comments=False": lambda html, url: (
            trafilatura.extract(html, include_comments=False) or ""
        ),
        f"ours ({EXTRACTOR_VERSION})": ours,
    }
    print(f"Zyte bench: {len(pages)} pages from {args.data}")
    for fn in systems.values():  # warm-up: imports, trafilatura's caches
        fn(pages[0][2], pages[0][1])
    kinds.clear()
    date_sources.clear()
    results, ms = run_interleaved(systems, pages)
    print(f"{'system':<48} {'F1':>6} {'P':>6} {'R':>6} {'CPU ms/page':>11}")
    for name in systems:
        f1, p, r = corpus_scores(zip(results[name], truths, strict=True))
        print(f"{name:<48} {f1:6.3f} {p:6.3f} {r:6.3f} {ms[name]:11.1f}")
    # every Zyte page is an article: any other kind here is a misclassification
    print("ours page_kind:", dict(kinds.most_common()))
    print("ours date_source:", dict(date_sources.most_common()))

    if args.worst:
        plain, ours = results[next(iter(systems))], results[list(systems)[-1]]
        rows = []
        for (pid, url, _h, truth), a, b in zip(pages, plain, ours, strict=True):
            fa = _page_f1(a, truth)
            fb = _page_f1(b, truth)
            rows.append((fb - fa, pid, url, fa, fb))
        rows.sort()
        for delta, pid, url, fa, fb in rows[: args.worst]:
            print(f"{delta:+.3f} plain={fa:.3f} ours={fb:.3f} {pid[:12]} {url}")
    return 0


def _page_f1(pred: str, truth: str) -> float:
    p, r = page_scores(pred, truth)
    p, r = p or 0.0, r or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
