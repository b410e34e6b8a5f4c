"""Wording-free promo signals (pipelines/promo/signals.py) through strip_promotions: each
signal removes what it is for and keeps its hard negative, the article text that looks like it."""

from __future__ import annotations

from typing import Any

from pipelines.promo import strip_promotions
from tests.test_promo import FILLER


def _strip(
    extra: list[dict[str, Any]], at: int | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    blocks = [{"kind": "p", "text": t, "link_chars": 0} for t in FILLER]
    blocks[at if at is not None else len(blocks) : at if at is not None else len(blocks)] = extra
    article = {
        "title": "Tram line extended",
        "language": "no",
        "blocks": blocks,
        "text": "\n\n".join(b["text"] for b in blocks),
    }
    out, removed = strip_promotions(article)
    return [b["text"] for b in out["blocks"]], [(r["kind"], r["rule"]) for r in removed]


def _b(
    text: str, *, kind: str = "p", linked: float = 0.0, links: list[str] | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {"kind": kind, "text": text, "link_chars": int(len(text) * linked)}
    if links:
        block["links"] = links
    return block


def test_a_short_block_linking_to_a_checkout_or_an_app_store_goes_in_any_language() -> None:
    kept, removed = _strip(
        [
            _b("Prøv Pluss i dag", linked=1.0, links=["https://example.no/abonnement/kjop?x=1"]),
            _b("Last ned appen vår", linked=1.0, links=["https://apps.apple.com/no/app/x/id1"]),
        ],
        at=3,
    )
    assert removed == [("subscription", "signal.link:subscription"), ("app", "signal.link:app")]
    assert kept == FILLER


def test_an_article_paragraph_that_links_a_subscription_page_is_text() -> None:
    para = (
        "The paper said its subscription revenue had doubled since the paywall was introduced, and the "
        "board approved a new pricing plan on Monday after a long debate about the future of print."
    )
    kept, removed = _strip([_b(para, linked=0.1, links=["https://example.org/subscribe"])], at=2)
    assert removed == [] and para in kept


def test_linked_headlines_inside_the_text_and_their_label_go() -> None:
    kept, removed = _strip([_b("Akkurat nå"), _b("Slik blir været i helgen", linked=1.0)], at=4)
    assert removed == [("read_also", "signal.label"), ("read_also", "signal.linked_headline")]
    assert kept == FILLER


def test_a_fully_linked_sentence_is_not_a_headline() -> None:
    sentence = "The minister resigned on Friday. Her successor was named the same evening"
    kept, removed = _strip([_b(sentence, linked=1.0)], at=4)
    assert removed == [] and sentence in kept


def test_a_list_of_linked_headlines_goes_and_a_bullet_list_of_facts_stays() -> None:
    links = _b(
        "Nye bompenger fra mars\nSlik stemte partiene?\nDette er de nye reglene",
        kind="list",
        linked=0.9,
    )
    facts = _b(
        "The line is 4 km long.\nIt will cost 240 million euros.\nWork starts in spring.",
        kind="list",
    )
    kept, removed = _strip([links, facts], at=5)
    assert removed == [("read_also", "signal.link_list")]
    assert facts["text"] in kept


def test_headlines_after_the_last_paragraph_go() -> None:
    kept, removed = _strip(
        [
            _b("Mest lest", kind="head"),
            _b("Ferja står fast i isen", linked=1.0),
            _b("Ny rektor ved skolen", linked=1.0),
        ]
    )
    assert {r for _, r in removed} == {"signal.headlines"} and len(removed) == 3
    assert kept == FILLER


def test_credits_and_author_lines_at_the_edges_go() -> None:
    kept, removed = _strip([_b("Foto: Kari Nordmann / NTB"), _b("(NTB)")])
    assert removed == [("credit", "signal.credit"), ("credit", "signal.credit")]
    kept, removed = _strip([_b("Von Nina Magoley")], at=0)
    assert removed == [("credit", "signal.byline")] and kept == FILLER


def test_a_heading_in_the_middle_is_not_an_author_line() -> None:
    kept, removed = _strip([_b("Northern Districts Welcome Plan", kind="head")], at=3)
    assert removed == [] and "Northern Districts Welcome Plan" in kept


def test_a_list_of_headlines_whose_link_texts_were_lost_goes_by_its_article_links() -> None:
    # the extraction kept an image link per item (no link text): no link density to go by
    rail = _b(
        "Nye bompenger fra mars i hele regionen\nSlik stemte partiene om den nye broen",
        kind="list",
        links=["https://example.no/nyheter/2026/nye-bompenger-fra-mars", "/nyheter/art4418508"],
    )
    points = _b(
        "Linjen blir fire kilometer lang\nDen koster 240 millioner euro",
        kind="list",
        links=["https://example.no/nyheter/2026/linjen-blir-lang-og-dyr"],
    )
    kept, removed = _strip([rail, points], at=5)
    assert removed == [("read_also", "signal.link_list")]
    assert points["text"] in kept


def test_the_cut_summary_under_a_teaser_goes_and_a_trailing_off_paragraph_stays() -> None:
    teaser = [
        _b("Czytaj więcej"),
        _b("Kolejna tura rozmów. Delegacja leci do Pakistanu", linked=1.0),
        _b("W poniedziałek wieczorem do stolicy Pakistanu dotrze delegacja, wynika ze słów Tr..."),
    ]
    kept, removed = _strip(teaser, at=3)
    assert len(removed) == 3 and kept == FILLER
    trailing = _b(
        "The mayor paused, looked at the plans, and said only that the depot would wait..."
    )
    kept, removed = _strip([trailing], at=3)
    assert removed == [] and trailing["text"] in kept


def test_a_signed_byline_after_the_standfirst_goes_a_phrase_starting_with_von_stays() -> None:
    kept, removed = _strip([_b("Von Nina Magoley")], at=1)
    assert removed == [("credit", "signal.byline")] and kept == FILLER
    kept, removed = _strip([_b("Von Anfang an skeptisch")], at=1)
    assert removed == [] and "Von Anfang an skeptisch" in kept
