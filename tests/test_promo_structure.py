"""Promotions found by the box around a block in the page (pipelines/promo/structure.py):
a sign-up form, a call-to-action link beside the text, a rail of same-site headlines. Each
beside its hard negative: the story's own headings and paragraphs in the same markup."""

from __future__ import annotations

import pytest

from pipelines.promo import strip_promotions
from tests.test_promo import FILLER

URL = "https://news.example.org/politics/2026/05/tram-line-extended"


def _strip(
    body: str | list[str], extra: list[tuple[int, str]], page: str = ""
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The article is FILLER (or the given paragraphs, the page then in `page`) with `extra`
    blocks inserted (position, text); the page must hold every block's text."""
    texts = list(FILLER) if isinstance(body, str) else list(body)
    body = body if isinstance(body, str) else page
    for at, text in sorted(extra, reverse=True):
        texts.insert(at, text)
    article = {
        "title": "Tram line extended",
        "language": "en",
        "canonical_url": URL,
        "blocks": [{"kind": "p", "text": t, "link_chars": 0} for t in texts],
        "text": "\n\n".join(texts),
    }
    html = f"<html><head><title>x</title></head><body><article>{body}</article></body></html>"
    out, removed = strip_promotions(article, html)
    return [b["text"] for b in out["blocks"]], [(r["kind"], r["rule"], r["text"]) for r in removed]


def _paras(texts: list[str]) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


def _removed(box: str, at: int, texts: list[str]) -> list[tuple[str, str]]:
    """Strip FILLER with `box` (holding `texts`, blocks of the extraction) after paragraph
    `at`: the story stays whole, and the removed blocks' (kind, rule) are returned."""
    body = _paras(FILLER[:at]) + box + _paras(FILLER[at:])
    kept, removed = _strip(body, [(at + k, t) for k, t in enumerate(texts)])
    assert kept == FILLER
    assert [t for _, _, t in removed] == texts
    return [(k, r) for k, r, _ in removed]


SIGN_UP = (
    '<div class="c-inline"><h2>Morgenbrevet hver dag</h2><p>Dagens viktigste saker</p>'
    '<form action="/x"><input type="email" name="e"><button>OK</button></form></div>'
)
CHECKOUT = (
    '<div class="x1"><h3>Alt fra redaksjonen vår</h3>'
    '<a href="https://news.example.org/abonnement/kjop">Prøv nå</a></div>'
)
RAIL = (
    '<section><h2>Most read in Politics</h2><div class="rail">'
    '<a href="/politics/2026/05/council-budget-vote"><span>Council budget</span></a>'
    '<a href="/politics/2026/05/mayor-race-opens"><span>Mayor race opens</span></a>'
    '<a href="/politics/2026/04/bus-fares-rise"><span>Bus fares rise</span></a>'
    "</div></section>"
)
FIGURE = (
    '<figure><img src="/img/tram.jpg"><figcaption>Workers on the avenue, Tuesday</figcaption>'
    "</figure>"
)


@pytest.mark.parametrize(
    ("box", "at", "texts", "expected"),
    [
        # the heading and blurb of a sign-up form, whatever their words
        (SIGN_UP, 4, ["Morgenbrevet hver dag", "Dagens viktigste saker"], ["signal.box:form"] * 2),
        # a short line beside a checkout link, though it links nowhere itself
        (CHECKOUT, 6, ["Alt fra redaksjonen vår"], ["signal.box:subscription"]),
        # the label of a rail of same-site headlines (the extraction dropped the links)
        (RAIL, 3, ["Most read in Politics"], ["signal.box:headlines"]),
        # a figure's caption, as a credit; the paragraph after the figure stays
        (FIGURE, 2, ["Workers on the avenue, Tuesday"], ["signal.caption"]),
    ],
    ids=["sign-up-form", "checkout-link", "headline-rail", "figure-caption"],
)
def test_a_box_goes_by_its_structure(
    box: str, at: int, texts: list[str], expected: list[str]
) -> None:
    assert [rule for _, rule in _removed(box, at, texts)] == expected


def test_the_storys_own_section_heading_and_its_linked_paragraph_stay() -> None:
    # a section of the story: heading, a paragraph with links to two same-site pages
    para = (
        'The <a href="/politics/2026/05/council-budget-vote">budget vote</a> and the '
        '<a href="/politics/2026/05/mayor-race-opens">mayor race</a> decide the timetable'
    )
    section = f"<section><h3>What happens next</h3><p>{para}</p></section>"
    linked = "The budget vote and the mayor race decide the timetable"
    body = _paras(FILLER[:5]) + section + _paras(FILLER[5:])
    kept, removed = _strip(body, [(5, "What happens next"), (6, linked)])
    assert removed == []
    assert "What happens next" in kept and linked in kept


def test_a_headline_of_the_story_that_a_side_rail_repeats_stays() -> None:
    entry = "<div class='entry'><h3>Council approves the plan</h3>" + _paras(FILLER[2:4]) + "</div>"
    rail = (
        '<aside><a href="/politics/2026/05/council-approves-the-plan">Council approves the plan</a>'
        '<a href="/politics/2026/05/mayor-race-opens">Mayor race opens</a></aside>'
    )
    body = _paras(FILLER[:2]) + entry + _paras(FILLER[4:]) + rail
    kept, removed = _strip(body, [(2, "Council approves the plan")])
    assert removed == [] and "Council approves the plan" in kept


SUMMARY = (
    "RISK REMAINS: an official said that with the elections so close it is unclear whether the "
    "drills will resume, and the ministry would keep a close watch on the carrier group as it "
    "moves east through the channel towards the open sea"
)


def test_a_teaser_card_inside_a_link_to_another_story_goes_however_long() -> None:
    # headline, date and summary in one anchor: the summary is another article's, and it
    # goes even when the cards are more than the share guard allows for guesses
    cards = "".join(
        f'<li><a href="/politics/2026/05/{k}/carrier-on-alert"><div>Carrier on alert {k}</div>'
        f"<p>{SUMMARY} {k}</p></a></li>"
        for k in range(3)
    )
    body = _paras(FILLER[:4]) + f"<ul>{cards}</ul>"
    kept, removed = _strip(FILLER[:4], [(4 + k, f"{SUMMARY} {k}") for k in range(3)], body)
    assert kept == FILLER[:4]
    assert [r for _, r, _ in removed] == ["signal.box:teaser"] * 3


def test_an_unclosed_anchor_stretched_over_the_story_is_not_a_teaser() -> None:
    body = '<a href="/politics/2026/05/other-story">' + _paras(FILLER)
    kept, removed = _strip(FILLER, [], body)
    assert removed == [] and kept == FILLER
