"""Promotions found by the box around a block in the page (pipelines/promo/structure.py):
a sign-up form, a call-to-action link beside the text, a rail of same-site headlines. Each
beside its hard negative: the story's own headings and paragraphs in the same markup."""

from __future__ import annotations

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


def test_the_heading_and_blurb_of_a_sign_up_form_go_whatever_their_words() -> None:
    box = (
        '<div class="c-inline"><h2>Morgenbrevet hver dag</h2><p>Dagens viktigste saker</p>'
        '<form action="/x"><input type="email" name="e"><button>OK</button></form></div>'
    )
    body = _paras(FILLER[:4]) + box + _paras(FILLER[4:])
    kept, removed = _strip(body, [(4, "Morgenbrevet hver dag"), (5, "Dagens viktigste saker")])
    assert kept == FILLER
    assert [(k, r) for k, r, _ in removed] == [("newsletter", "signal.box:form")] * 2


def test_a_short_line_beside_a_checkout_link_goes_though_it_links_nowhere() -> None:
    box = (
        '<div class="x1"><h3>Alt fra redaksjonen vår</h3>'
        '<a href="https://news.example.org/abonnement/kjop">Prøv nå</a></div>'
    )
    body = _paras(FILLER[:6]) + box + _paras(FILLER[6:])
    kept, removed = _strip(body, [(6, "Alt fra redaksjonen vår")])
    assert kept == FILLER
    assert [(k, r) for k, r, _ in removed] == [("subscription", "signal.box:subscription")]


def test_the_label_of_a_rail_of_same_site_headlines_goes() -> None:
    rail = (
        '<section><h2>Most read in Politics</h2><div class="rail">'
        '<a href="/politics/2026/05/council-budget-vote"><span>Council budget</span></a>'
        '<a href="/politics/2026/05/mayor-race-opens"><span>Mayor race opens</span></a>'
        '<a href="/politics/2026/04/bus-fares-rise"><span>Bus fares rise</span></a>'
        "</div></section>"
    )
    body = _paras(FILLER[:3]) + rail + _paras(FILLER[3:])
    kept, removed = _strip(body, [(3, "Most read in Politics")])
    assert kept == FILLER
    assert removed == [("read_also", "signal.box:headlines", "Most read in Politics")]


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


def test_a_figure_caption_goes_as_a_credit_and_the_paragraph_after_the_figure_stays() -> None:
    figure = (
        '<figure><img src="/img/tram.jpg"><figcaption>Workers on the avenue, Tuesday</figcaption>'
        "</figure>"
    )
    body = _paras(FILLER[:2]) + figure + _paras(FILLER[2:])
    kept, removed = _strip(body, [(2, "Workers on the avenue, Tuesday")])
    assert kept == FILLER
    assert removed == [("credit", "signal.caption", "Workers on the avenue, Tuesday")]
