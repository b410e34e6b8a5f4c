"""Recurrence across an outlet's articles (pipelines/promo/recurrence.py): which blocks are
counted, and that what an outlet repeats where real outlets put it is learned in a real
archive and removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive.boilerplate import load_boilerplate, record_paragraphs
from archive.db import reader, writer
from pipelines.promo import paragraph_hash, strip_promotions
from pipelines.promo.recurrence import boundary_blocks
from tests.test_boilerplate import T0, WORDS, _article

# Related-story boxes as TaipeiTimes runs them after the story: a kicker and a summary of
# more than 600 characters each, four of them (the old rule counted the last three, under 600).
RELATED = [
    f"{kicker}: "
    + " ".join(f"{word} said the {kicker.lower()} plan would take many years" for word in WORDS * 2)
    for kicker in ("RISK REMAINS", "FIVE-YEAR WINDOW?", "RESILIENCE", "REACTION")
]


def _with_related(k: int) -> dict[str, Any]:
    article = _article(k)
    article["blocks"] = article["blocks"][:-1] + [
        {"kind": "p", "text": t, "link_chars": 0} for t in RELATED
    ]
    return article


def test_every_block_after_the_last_paragraph_is_counted_long_ones_too() -> None:
    assert all(len(t) > 600 for t in RELATED)
    counted = [b["text"] for b in boundary_blocks(_with_related(0))]
    assert all(t in counted for t in RELATED)


def test_a_related_story_box_repeated_by_the_outlet_is_learned_and_removed(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    with writer(db) as con:
        for k in range(4):
            pairs = [
                (paragraph_hash(b["text"]), b["text"]) for b in boundary_blocks(_with_related(k))
            ]
            record_paragraphs(con, "ledger", pairs, T0)
    with reader(db) as con:
        learned = load_boilerplate(con, "ledger", now=T0)
    out, removed = strip_promotions(_with_related(5), boilerplate=learned)
    assert [r["text"] for r in removed] == RELATED
    assert {r["rule"] for r in removed} == {"boilerplate.outlet"}
    assert not any(t in out["text"] for t in RELATED)
    assert "the council met on day" in out["text"]


def test_a_short_repeated_line_after_a_removed_pitch_goes_after_a_credit_it_stays() -> None:
    pitch = "Become a member of the Ledger club and meet the editors every month at the boathouse."
    tail = "ledger.example.org/club"
    texts = [b["text"] for b in _article(1)["blocks"][:8]]
    learned = frozenset({paragraph_hash(pitch), paragraph_hash(tail)})

    def strip(extra: list[str]) -> list[str]:
        blocks = [
            {"kind": "p", "text": t, "link_chars": 0} for t in [*texts[:4], *extra, *texts[4:]]
        ]
        article = {"title": "x", "language": "en", "text": "", "blocks": blocks}
        return [r["text"] for r in strip_promotions(article, boilerplate=learned)[1]]

    assert strip([pitch, tail]) == [pitch, tail]
    assert strip(["Photo: AFP", tail]) == ["Photo: AFP"]
