"""Signals that catch a pitch on a site never seen, whatever its language and markup: where
its links go (pipelines/promo/targets.py), the price it names (pipelines/promo/signals.py),
the widget it sits in (pipelines/promo/structure.py).
Each page in tests/promo_pages/ is a small article of a language no phrase list knows, with
its pitches and the hard negatives beside them (a story paragraph linking a fundraiser, a
fare the story quotes), cleaned on the real path (trafilatura, then the promo stage)."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest

from pipelines.clean import clean_article

PAGES = Path(__file__).resolve().parent / "promo_pages"


def _clean(name: str, url: str) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
    """(the page's paragraphs, the archived text's paragraphs, removed (kind, rule, text))."""
    html = (PAGES / name).read_text(encoding="utf-8")
    paras = [
        " ".join(p.text_content().split())
        for p in lxml.html.document_fromstring(html).iter("p", "h2")
        if p.getparent().tag == "div"
    ]
    cleaned = clean_article(html, url)
    assert cleaned.skip_reason is None
    kept = [" ".join(t.split()) for t in cleaned.article["text"].split("\n\n")]
    return paras, kept, [(r["kind"], r["rule"], r["text"]) for r in cleaned.removed]


@pytest.mark.parametrize(
    ("name", "url", "pitches"),
    [
        (
            # a Patreon link and a same-site "/hirlevel" (newsletter) page, in Hungarian;
            # a story paragraph linking an article whose slug says "támogatás" stays
            "hu_link_targets.html",
            "https://pelda.hu/belfold/2026/05/bovitik-a-villamosvonalat",
            [
                ("donation", "signal.link:donation", "Ha fontosnak tartod"),
                ("newsletter", "signal.link:newsletter", "Minden reggel"),
            ],
        ),
        (
            # a 45-word offer with a price beside its checkout link, and a price per month
            # alone, in Indonesian; a fundraiser's sum and the tram fare stay
            "id_price_offer.html",
            "https://contohwarta.co.id/kota/2026/05/12/jalur-trem-diperpanjang",
            [
                ("subscription", "signal.offer", "Penawaran khusus"),
                ("subscription", "signal.price", "Coba 7 hari"),
            ],
        ),
        (
            # a sign-up widget (a button, a heading, its small print) in Croatian; an
            # infographic's title beside its zoom button and a section heading stay
            "hr_widgets.html",
            "https://primjer-vijesti.hr/vijesti/2026/05/tramvajska-linija-produljena",
            [
                ("social", "signal.box:controls", "Pridruži se"),
                ("social", "signal.box:controls", "Članovi zajednice"),
            ],
        ),
    ],
    ids=["link-targets", "price-offer", "widget"],
)
def test_a_pitch_of_an_unknown_language_goes_by_its_links_and_price(
    name: str, url: str, pitches: list[tuple[str, str, str]]
) -> None:
    paras, kept, removed = _clean(name, url)
    assert [(k, r) for k, r, _ in removed] == [(k, r) for k, r, _ in pitches]
    assert all(t.startswith(p) for (_, _, t), (_, _, p) in zip(removed, pitches, strict=True))
    story = [p for p in paras if not any(p.startswith(s) for _, _, s in pitches)]
    assert kept == story
