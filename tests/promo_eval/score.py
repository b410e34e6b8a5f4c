"""Scoring of promo stripping on labelled pages: which labelled paragraphs reached the
final text, and whether each removed block was a promotion.

A paragraph "reached" the text when most of its word 3-shingles are there: robust to the
small spacing and punctuation changes extraction makes, strict enough that a promo line
is not counted present because the article shares a few words with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.promo_eval.generate import Page

_TOKEN = re.compile(r"\w+")


def _shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    toks = [t.casefold() for t in _TOKEN.findall(text)]
    if len(toks) < k:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i : i + k]) for i in range(len(toks) - k + 1)}


class Text:
    """A text prepared for `present` checks."""

    def __init__(self, text: str) -> None:
        self.joined = " " + " ".join(t.casefold() for t in _TOKEN.findall(text)) + " "
        self.shingles = _shingles(text)


def present(paragraph: str, text: Text, threshold: float = 0.6) -> bool:
    toks = [t.casefold() for t in _TOKEN.findall(paragraph)]
    if len(toks) < 3:  # a 1-2 word line: the words, in order, somewhere in the text
        return not toks or (" " + " ".join(toks) + " ") in text.joined
    sh = _shingles(paragraph)
    return len(sh & text.shingles) / len(sh) >= threshold


@dataclass
class Tally:
    pages: int = 0
    promo: int = 0
    promo_leaked: int = 0
    article: int = 0
    article_lost: int = 0
    lost_by_strip: int = 0
    removed_promo: int = 0
    removed_article: int = 0
    removed_other: int = 0
    pages_over_20: int = 0
    pages_strip_over_20: int = 0
    flagged: int = 0
    leaks: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
            else:
                getattr(self, name).extend(value)

    @property
    def leaked_share(self) -> float:
        return self.promo_leaked / self.promo if self.promo else 0.0

    @property
    def lost_share(self) -> float:
        return self.article_lost / self.article if self.article else 0.0

    @property
    def precision(self) -> float | None:
        hit = self.removed_promo + self.removed_article
        return self.removed_promo / hit if hit else None


def score_page(
    page: Page,
    final_text: str,
    removed: Iterable[dict[str, Any]] = (),
    extracted_text: str | None = None,
    flagged: bool = False,
) -> Tally:
    """Tally of one page: `final_text` after stripping, `extracted_text` before (if any)."""
    t = Tally(pages=1, flagged=int(flagged))
    final = Text(final_text)
    before = Text(extracted_text) if extracted_text is not None else None
    for para in page.promo:
        t.promo += 1
        if present(para, final):
            t.promo_leaked += 1
            t.leaks.append(f"{page.id} {page.lang} {page.family}: {para[:90]}")
    lost_chars = strip_lost_chars = 0
    total_chars = sum(len(p) for p in page.article) or 1
    for para in page.article:
        t.article += 1
        if not present(para, final):
            t.article_lost += 1
            lost_chars += len(para)
            if before is not None and present(para, before):
                t.lost_by_strip += 1
                strip_lost_chars += len(para)
                t.losses.append(f"{page.id} {page.lang} {page.family}: {para[:90]}")
    promo_sh: set[tuple[str, ...]] = (
        set().union(*(_shingles(p) for p in page.promo)) if page.promo else set()
    )
    art_sh: set[tuple[str, ...]] = set().union(*(_shingles(p) for p in page.article))
    for block in removed:
        sh = _shingles(block["text"])
        if not sh:
            continue
        if len(sh & promo_sh) / len(sh) >= 0.5 or _short_in(block["text"], page.promo):
            t.removed_promo += 1
        elif len(sh & art_sh) / len(sh) >= 0.5:
            t.removed_article += 1
        else:
            t.removed_other += 1
    t.pages_over_20 = int(lost_chars / total_chars > 0.2)
    t.pages_strip_over_20 = int(strip_lost_chars / total_chars > 0.2)
    return t


def _short_in(text: str, paras: list[str]) -> bool:
    norm = " ".join(_TOKEN.findall(text.casefold()))
    return bool(norm) and any(norm == " ".join(_TOKEN.findall(p.casefold())) for p in paras)


def evaluate(
    pages: Iterable[Page], run: Callable[[Page], tuple[str, list[dict[str, Any]], str | None, bool]]
) -> Tally:
    """Run `run(page) -> (final text, removed blocks, extracted text or None, flagged)` on every page."""
    total = Tally()
    for page in pages:
        final, removed, extracted, flagged = run(page)
        total.add(score_page(page, final, removed, extracted, flagged))
    return total
