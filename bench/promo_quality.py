"""Promo stripping quality on the labelled evaluation set (tests/promo_eval).

Prints, for our full path (pipelines.extract.extract_article then strip_promotions) beside
plain trafilatura.extract on the same pages: promo paragraphs leaked (share that reached the
final text), article paragraphs lost (all causes, and by the stripper alone), precision of
removals, and pages that lost more than 20 % of their article text. The "tune" part is what
the rules were developed on; "heldout" had wording they never saw (its first figure is the
blind one; its leaks then guided general fixes, so it became a development set); "heldout2"
was written before those fixes and never tuned on (the honest generalisation figure).

Targets: leaked <= 5 %, lost <= 0.5 %, precision >= 0.98, no page over 20 %.
Usage: python bench/promo_quality.py [--verbose] [--split=tune|heldout|heldout2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura

from pipelines.extract import extract_article
from pipelines.promo import RULES_VERSION, strip_promotions
from tests.promo_eval.generate import Page, build_pages
from tests.promo_eval.score import Tally, score_page


def ours(page: Page) -> tuple[str, list[dict[str, Any]], str | None, bool]:
    article = extract_article(page.html, page.url)
    stripped, removed = strip_promotions(article, page.html)
    return stripped["text"], removed, article["text"], bool(stripped.get("promo_flagged"))


def plain(page: Page) -> tuple[str, list[dict[str, Any]], str | None, bool]:
    return trafilatura.extract(page.html, url=page.url) or "", [], None, False


def _row(name: str, t: Tally, strip: bool) -> str:
    prec = "n/a" if t.precision is None else f"{t.precision:.3f}"
    by_strip = f"{t.lost_by_strip / t.article:6.2%}" if strip and t.article else "   n/a"
    return (
        f"  {name:<22} pages {t.pages:4d}  promo leaked {t.leaked_share:6.1%} ({t.promo_leaked}/{t.promo})"
        f"  article lost {t.lost_share:6.2%} ({t.article_lost}/{t.article}) by strip {by_strip}"
        f"  precision {prec}  pages >20% lost {t.pages_over_20}"
        + (f" (by strip {t.pages_strip_over_20}, flagged {t.flagged})" if strip else "")
    )


def _call(fn: Any, page: Page) -> tuple[str, list[dict[str, Any]], str | None, bool]:
    final, removed, extracted, flagged = fn(page)
    return final, removed, extracted, flagged


def _sum(tallies: Any) -> Tally:
    total = Tally()
    for t in tallies:
        total.add(t)
    return total


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv
    print(f"promo rules {RULES_VERSION}; extractor: pipelines.extract")
    splits = [a.split("=", 1)[1] for a in argv if a.startswith("--split=")] or [
        "tune",
        "heldout",
        "heldout2",
    ]
    for split in splits:
        pages = build_pages(split)
        t0 = time.perf_counter()
        per_page = [(p, score_page(p, *_call(ours, p))) for p in pages]
        elapsed = time.perf_counter() - t0
        plain_t = _sum(score_page(p, *_call(plain, p)) for p in pages)
        ours_t = _sum(t for _, t in per_page)
        hard_t = _sum(t for p, t in per_page if p.hard_negative)
        langs = sorted({p.lang for p in pages})
        print(
            f"\n[{split}] {len(pages)} pages, {hard_t.pages} hard negatives, languages {', '.join(langs)}"
        )
        print(_row("ours (extract+strip)", ours_t, True))
        print(_row("plain trafilatura", plain_t, False))
        print(_row("ours, hard negatives", hard_t, True))
        print(f"  removed blocks: {ours_t.removed_promo} promo, {ours_t.removed_article} article, "
              f"{ours_t.removed_other} unlabelled page text; {elapsed / len(pages) * 1000:.0f} ms/page")  # fmt: skip
        for lang in langs:
            lt = _sum(t for p, t in per_page if p.lang == lang)
            prec = "n/a" if lt.precision is None else f"{lt.precision:.3f}"
            print(f"    {lang}: leaked {lt.leaked_share:6.1%} ({lt.promo_leaked}/{lt.promo})  "
                  f"lost by strip {lt.lost_by_strip}/{lt.article}  precision {prec}")  # fmt: skip
        if verbose:
            for line in ours_t.leaks:
                print("    LEAK", line)
            for line in ours_t.losses:
                print("    LOST", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
