"""Extraction stage: golden pages (stored page -> expected Article JSON) plus the
behaviours a user notices: the right date and where it came from, paywall and
challenge pages flagged, the key-points box kept as the summary, no crash on junk.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_extract.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.text import word_count
from pipelines.extract import (
    EXTRACTOR_VERSION,
    classify_page,
    extract_article,
    parse_date,
    url_date,
)
from pipelines.language import detect

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED = SHARED / "seed" / "article.html"
SEED_URL = "https://courrier-strategique.example/geopolitique/trump-poutine-appel-ordre-mondial/"

ARTICLE_KEYS = {
    "title", "authors", "published_at", "modified_at", "date_source", "language",
    "description", "section", "tags", "image_url", "canonical_url", "og_url", "site_name",
    "paywalled", "summary", "blocks", "text", "word_count", "page_kind",
}  # fmt: skip

# Inputs of each golden case (the page itself is tests/golden/<case>/page.html).
CASES: dict[str, dict[str, Any]] = {
    "jsonld_date_de": {"url": "https://rundschau.example/lokales/stadtrat-radwegenetz-123456.html"},
    "meta_date_es": {"url": "https://diariodelsur.example/economia/sequia-riego-valle"},
    "url_date_it": {"url": "https://cronaca.example/2024/05/17/nuovo-ponte-estate/"},
    "feed_hint_future_meta_en": {
        "url": "https://coastalcourier.example/news/harbour-ferry-resume",
        "hints": {
            "title": "Harbour ferry to resume",
            "published_at": "Fri, 17 May 2024 08:30:00 +0100",
            "source": "feed",
            "source_url": "https://coastalcourier.example/rss.xml",
        },
    },
    "paywall_jsonld_fr": {"url": "https://echo-ouest.example/enquete/rachat-port-commerce"},
    "microdata_paywall_nl": {"url": "https://stadskrant.example/nieuws/woningen-fabrieksterrein"},
    "listing_section_fr": {"url": "https://quotidien.example/politique/"},
    "challenge_cloudflare": {"url": "https://news.example.com/world/some-story-123"},
    "empty_page": {"url": "https://app.example/story/42", "language_hint": "en"},
    "latin1_bytes_fr": {"url": "https://ville.example/culture/fete-musique", "as_bytes": True},
}


def _run(case: str) -> dict[str, Any]:
    spec = CASES[case]
    raw = (GOLDEN / case / "page.html").read_bytes()
    html: Any = raw if spec.get("as_bytes") else raw.decode("utf-8")
    return extract_article(html, spec["url"], spec.get("hints"), spec.get("language_hint"))


def _golden(article: dict[str, Any]) -> dict[str, Any]:
    """The compared view: every field but text (checked as the join of blocks)."""
    return {k: v for k, v in sorted(article.items()) if k != "text"}


def _check_golden(case_dir: Path, article: dict[str, Any]) -> None:
    expected_path = case_dir / "expected.json"
    got = _golden(article)
    if os.environ.get("UPDATE_GOLDEN") == "1" or not expected_path.exists():
        if os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"{expected_path} missing: run with UPDATE_GOLDEN=1 and review it")
        expected_path.write_text(
            json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert got == expected
    assert article["text"] == "\n\n".join(b["text"] for b in article["blocks"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_case(case: str) -> None:
    _check_golden(GOLDEN / case, _run(case))


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    assert SEED.exists(), f"seed page not found at {SEED}: shared/ must sit beside the repo"
    return extract_article(SEED.read_text(encoding="utf-8"), SEED_URL)


def test_seed_golden(seed: dict[str, Any]) -> None:
    _check_golden(GOLDEN / "seed_article", seed)


def test_seed_key_points_become_the_summary(seed: dict[str, Any]) -> None:
    summary = seed["summary"] or ""
    assert summary.splitlines() == [
        "Trump et Poutine discutent une heure au téléphone, bousculant l’ordre mondial. "
        "Un dialogue direct entre chefs d’État qui inquiète l’Occident.",
        "Après une attaque de drones ukrainiens, Poutine promet une réponse. "
        "Trump s’implique, médiateur ou stratège?",
        "Un axe Washington-Moscou hors OTAN se dessine. "
        "Coopération malgré le conflit, signe d’un nouvel équilibre mondial.",
    ]
    # moved, not duplicated: the body starts with the first real paragraph
    assert "Les essentiels" not in seed["text"]
    assert "Un axe Washington-Moscou hors OTAN se dessine" not in seed["text"]
    assert seed["text"].startswith("Alors que l’opinion occidentale")


def test_key_points_label_inside_the_article_takes_only_the_list() -> None:
    paras = "".join(
        f"<p>Paragraph {i} of the report explains in detail how the regional rail network "
        "will be reorganised, which lines close, which open and what passengers should "
        "expect from the new timetable that comes into force in the spring.</p>"
        for i in range(5)
    )
    html = (
        "<html lang='en'><head><title>Rail shake-up</title></head><body><article>"
        "<h1>Rail shake-up</h1><h2>Key points</h2><ul>"
        "<li>Three rural lines close at the end of March, replaced by buses.</li>"
        "<li>Two new express services link the airport with the city centre.</li></ul>"
        f"{paras}</article></body></html>"
    )
    art = extract_article(html, "https://x.example/news/rail-shake-up-2025")
    assert art["summary"] == (
        "Three rural lines close at the end of March, replaced by buses.\n"
        "Two new express services link the airport with the city centre."
    )
    assert "Key points" not in art["text"]
    assert all(f"Paragraph {i} of the report" in art["text"] for i in range(5))


def test_teaser_list_in_a_sidebar_is_not_a_summary() -> None:
    body = "".join(
        f"<p>Sentence {i} of an ordinary article about the harbour, long enough to be prose "
        "and to be kept by the extractor as the main text of the page.</p>"
        for i in range(4)
    )
    html = (
        "<html lang='en'><head><title>Harbour</title></head><body>"
        "<aside class='sidebar'><h3>Highlights</h3><ul>"
        "<li>A completely different story about the football club's new stadium plans</li>"
        "<li>Another unrelated story about a bakery that won a national bread prize</li>"
        f"</ul></aside><article>{body}</article></body></html>"
    )
    assert extract_article(html, "https://x.example/news/harbour-2025")["summary"] is None


def test_seed_metadata(seed: dict[str, Any]) -> None:
    assert seed["title"] == "Trump et Poutine : l'appel qui bouscule l'ordre mondial"
    assert seed["language"] == "fr"
    assert seed["published_at"] == "2025-06-05T09:12:00+02:00"
    assert seed["date_source"] == "meta"
    assert seed["site_name"] == "Le Courrier Stratégique"
    assert seed["canonical_url"] == SEED_URL
    assert seed["page_kind"] == "article"
    assert seed["paywalled"] is False
    # navigation, share buttons, related links and footer are not body text
    for chrome in ("Accueil", "Partager sur Facebook", "Sommet de l'OTAN", "Mentions légales"):
        assert chrome not in seed["text"]
    # the title is its own field, not the first block
    assert seed["blocks"][0]["kind"] == "p"
    kinds = {b["kind"] for b in seed["blocks"]}
    assert {"p", "head", "quote"} <= kinds


def test_all_cases_have_the_contract_keys() -> None:
    for case in CASES:
        art = _run(case)
        assert set(art) == ARTICLE_KEYS, case
        assert art["word_count"] == word_count(art["text"])


def test_date_sources_and_priority() -> None:
    de = _run("jsonld_date_de")
    assert (de["published_at"], de["date_source"]) == ("2024-03-01T18:30:00+01:00", "jsonld")
    assert de["modified_at"] == "2024-03-02T08:15:00+01:00"
    assert de["authors"] == ["Anna Schmidt", "Jonas Weber"]
    assert (
        de["canonical_url"] == "https://rundschau.example/lokales/stadtrat-radwegenetz-123456.html"
    )
    assert de["image_url"] == "https://rundschau.example/bilder/radweg.jpg"
    linked = [b for b in de["blocks"] if b["link_chars"]]
    assert [b["link_chars"] for b in linked] == [len("vollständigen Radwegeplan")]
    es = _run("meta_date_es")
    assert (es["published_at"], es["date_source"]) == ("2023-08-14T07:45:00+02:00", "meta")
    assert es["tags"] == ["sequía", "agricultura"]
    it = _run("url_date_it")
    assert (it["published_at"], it["date_source"]) == ("2024-05-17T00:00:00+00:00", "url")
    # the page's own date (2099) is implausible and rejected; the feed date is used
    en = _run("feed_hint_future_meta_en")
    assert (en["published_at"], en["date_source"]) == ("2024-05-17T08:30:00+01:00", "feed")


def test_bylines_and_tags_are_cleaned() -> None:
    html = (
        "<html lang='en'><head><title>T</title>"
        "<meta name='author' content='By Jane Doe and John Roe | Nov 18, 2019'>"
        "<meta name='keywords' content='harbour, &quot;ferries&quot;, @post-id:42'>"
        "</head><body><article><p>"
        + "The ferry resumes service on Monday after repairs to the landing stage. " * 4
        + "</p></article></body></html>"
    )
    art = extract_article(html, "https://x.example/news/ferry")
    assert art["authors"] == ["Jane Doe", "John Roe"]
    assert art["tags"] == ["harbour", '"ferries"']


def test_languages_from_markup_and_hint() -> None:
    assert _run("jsonld_date_de")["language"] == "de"
    assert _run("meta_date_es")["language"] == "es"  # from og:locale es_ES
    assert _run("url_date_it")["language"] == "it"
    assert _run("latin1_bytes_fr")["language"] == "fr"
    assert _run("microdata_paywall_nl")["language"] == "nl"
    # no usable markup: the outlet's language hint
    html = "<html><head><title>x</title></head><body><p>Texto breve.</p></body></html>"
    assert extract_article(html, "https://x.example/a", language_hint="es-ES")["language"] == "es"


def test_language_guessed_from_text_as_last_resort() -> None:
    para = (
        "<p>Der Bürgermeister hat am Montag angekündigt, dass die Stadt die Gebühren für "
        "die Kindergärten nicht erhöhen wird, obwohl die Kosten für das Personal und die "
        "Energie im vergangenen Jahr deutlich gestiegen sind und sich die Lage nicht "
        "entspannt hat.</p>"
    )
    html = f"<html><head><title>Gebühren</title></head><body><article>{para * 2}</article></body></html>"
    assert extract_article(html, "https://x.example/a/gebuehren")["language"] == "de"
    # a declaration the text contradicts loses to a confident reading of the text ...
    assert (
        extract_article(html, "https://x.example/a/gebuehren", language_hint="fr")["language"]
        == "de"
    )
    lying = html.replace("<html>", '<html lang="en">')
    assert extract_article(lying, "https://x.example/a/gebuehren")["language"] == "de"
    # ... but a text too short to tell keeps what the page or the outlet says
    short = "<html lang='fr'><body><article><p>Die Gebühren steigen.</p></article></body></html>"
    assert extract_article(short, "https://x.example/a/g")["language"] == "fr"
    for case, lang in [
        ("meta_date_es", "es"),
        ("url_date_it", "it"),
        ("microdata_paywall_nl", "nl"),
    ]:
        assert detect(_run(case)["text"])[0] == lang
    assert detect("too short")[0] is None


def test_paywall_flags() -> None:
    assert _run("paywall_jsonld_fr")["paywalled"] is True
    assert _run("microdata_paywall_nl")["paywalled"] is True
    assert _run("jsonld_date_de")["paywalled"] is False  # isAccessibleForFree: true


def test_page_kinds() -> None:
    assert _run("listing_section_fr")["page_kind"] == "listing"
    challenge = _run("challenge_cloudflare")
    assert (challenge["page_kind"], challenge["title"]) == ("challenge", "Just a moment...")
    assert challenge["blocks"] == []
    assert _run("empty_page")["page_kind"] == "empty"
    assert _run("jsonld_date_de")["page_kind"] == "article"


def test_latin1_bytes_are_decoded() -> None:
    art = _run("latin1_bytes_fr")
    assert art["title"] == "Fête de la musique : la ville prépare une édition record"
    assert "Côté programmation" in art["text"]
    assert "\ufffd" not in art["text"]


def test_article_about_captchas_is_not_a_challenge() -> None:
    para = (
        "<p>Websites increasingly ask visitors to solve a captcha or to enable JavaScript "
        "before they can read anything, and researchers say the checks are getting harder "
        "for people with disabilities while bots pass them with ease.</p>"
    )
    html = f"<html lang='en'><head><title>Why captchas fail</title></head><body><article>{para * 6}</article></body></html>"
    assert extract_article(html, "https://x.example/tech/captchas-fail")["page_kind"] == "article"


def test_short_article_with_cookie_banner_is_an_article() -> None:
    html = (
        "<html lang='en'><head><title>Council approves budget</title>"
        "<meta property='og:type' content='article'></head><body>"
        "<div class='consent'>We value your privacy. <button>Accept all</button></div>"
        "<article><h1>Council approves budget</h1><p>The city council approved the 2025 "
        "budget on Tuesday by nine votes to four, after a three-hour debate on road repairs "
        "and the library's opening hours, which will be extended on Saturdays.</p>"
        "<p>The mayor said taxes would not rise this year.</p></article></body></html>"
    )
    art = extract_article(html, "https://x.example/news/council-budget-2025")
    assert art["page_kind"] == "article"
    assert "approved the 2025 budget" in art["text"]


def test_short_blog_post_on_a_link_heavy_page_is_not_a_listing() -> None:
    nav = "".join(f"<li><a href='/tag/{i}/'>Tag number {i}</a></li>" for i in range(60))
    body = (
        "<p>Our new cannon fires smoke rings across the garden, and the children spent the "
        "whole afternoon trying to knock paper cups off the fence with it.</p>"
        "<p>The rings travel about ten metres before they fall apart in the wind.</p>"
        "<p>Next week we will try coloured smoke and a bigger barrel made from a bin.</p>"
    )
    html = (
        f"<html lang='en'><head><title>About bugs</title></head><body><ul>{nav}</ul>"
        f"<div class='post'><h1>About bugs</h1>{body}</div></body></html>"
    )
    assert extract_article(html, "https://blog.example/about-bugs/")["page_kind"] == "article"


def test_cookie_wall_is_a_challenge() -> None:
    html = (
        "<html><head><title>Before you continue</title></head><body><div>"
        "<p>We use cookies and data to deliver our services.</p>"
        "<button>Accept all</button><button>Reject all</button></div></body></html>"
    )
    assert extract_article(html, "https://consent.example/?continue=x")["page_kind"] == "challenge"


def test_long_consent_page_is_a_challenge_by_its_title() -> None:
    policy = "<p>We and our partners store and access information on your device. </p>" * 40
    html = (
        f"<html><head><title>Before you continue to News</title></head><body>{policy}"
        "<button>Accept all</button></body></html>"
    )
    assert extract_article(html, "https://consent.example/")["page_kind"] == "challenge"


GARBAGE: list[Any] = [
    "",
    "   \n\t",
    "\x00\x01\x02\x03binary\x00junk" * 50,
    bytes(range(256)) * 20,
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    "plain text without any markup at all",
    '{"json": "not html", "items": [1, 2, 3]}',
    "<<<>>><<</>",
    "<html",
    "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 10,
    "<html><head><script type='application/ld+json'>{broken json,,}</script></head><body></body></html>",
    "<html><body><p>\udcff lone surrogate</p></body></html>",
    None,
    12345,
]


@pytest.mark.parametrize("junk", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises(junk: Any) -> None:
    art = extract_article(junk, "not a url", {"published_at": "garbage", "source": "feed"})
    assert set(art) == ARTICLE_KEYS
    assert art["page_kind"] in {"empty", "not_html", "article"}
    if (
        junk is None
        or isinstance(junk, (int, bytes))
        or (isinstance(junk, str) and "<" not in junk)
    ):
        assert art["page_kind"] in {"empty", "not_html"}
    assert art["published_at"] is None


def test_odd_arguments_never_raise() -> None:
    html = "<html><body><p>Some text here for the page.</p></body></html>"
    for hints, lang in [("not a dict", 123), ({"published_at": 5, "source": "feed"}, ["fr"])]:
        art = extract_article(html, None, hints, lang)  # type: ignore[arg-type]
        assert set(art) == ARTICLE_KEYS


def test_classify_page_without_extraction() -> None:
    assert classify_page("") == "empty"
    assert classify_page("just words") == "not_html"
    assert (
        classify_page("<html><head><title>Just a moment...</title></head><body></body></html>")
        == "challenge"
    )


def test_parse_date_rules() -> None:
    assert parse_date("2024-05-17T10:00:00Z") == "2024-05-17T10:00:00+00:00"
    assert parse_date("2024-05-17") == "2024-05-17T00:00:00+00:00"  # naive: UTC
    assert parse_date("Fri, 17 May 2024 08:30:00 GMT") == "2024-05-17T08:30:00+00:00"
    assert parse_date("1989-12-31T23:00:00+00:00") is None  # before 1990
    soon = datetime.now(UTC) + timedelta(days=1)
    later = datetime.now(UTC) + timedelta(days=3)
    assert parse_date(soon.isoformat()) is not None  # within the 2-day slack
    assert parse_date(later.isoformat()) is None
    assert parse_date("not a date") is None
    assert url_date("https://x.example/2024/05/17/slug") == "2024-05-17T00:00:00+00:00"
    assert url_date("https://x.example/2024/13/45/slug") is None
    assert url_date("https://x.example/news/slug-20240517") is None
    assert url_date("https://x.example/statements/2019/nov/18/who/") == "2019-11-18T00:00:00+00:00"


def test_sitemap_hint_and_lastmod() -> None:
    html = (
        "<html lang='en'><head><title>Ferry</title></head><body><article><p>"
        + "The ferry resumes service on Monday after repairs to the landing stage. " * 5
        + "</p></article></body></html>"
    )
    hints = {
        "source": "sitemap",
        "published_at": "2024-05-16T22:00:00+00:00",
        "lastmod": "2024-05-18",
    }
    art = extract_article(html, "https://x.example/news/ferry", hints)
    assert (art["published_at"], art["date_source"]) == ("2024-05-16T22:00:00+00:00", "sitemap")
    assert art["modified_at"] == "2024-05-18T00:00:00+00:00"


def test_extractor_version_names_trafilatura() -> None:
    assert EXTRACTOR_VERSION.startswith("extract-") and "trafilatura-2.3.1" in EXTRACTOR_VERSION


# --------------------------------------------------------------------------- the bench metric


def _bench() -> Any:
    sys.path.insert(0, str(HERE.parent / "bench"))
    import extract_quality

    return extract_quality


def test_shingle_metric_on_a_tiny_example() -> None:
    bench = _bench()
    truth = "one two three four five"  # shingles: (1-4), (2-5)
    assert bench.page_scores(truth, truth) == (1.0, 1.0)
    p, r = bench.page_scores("one two three four", truth)  # 1 shingle, shared
    assert (p, r) == (1.0, 0.5)
    p, r = bench.page_scores("zero one two three four five six", truth)  # 4 shingles, 2 shared
    assert (p, r) == (0.5, 1.0)
    # multiset: a repeated shingle counts only as often as in the truth
    assert bench.page_scores("a b c d a b c d", "a b c d")[0] == pytest.approx(1 / 5)
    # empty prediction: no precision term, recall 0
    f1, precision, recall = bench.corpus_scores([("", truth), (truth, truth)])
    assert (precision, recall) == (1.0, 0.5)
    assert f1 == pytest.approx(2 / 3)


def test_a_long_article_on_a_link_heavy_page_is_not_a_listing() -> None:
    """Blogs and portals mark every page og:type website and wrap the story in menus and
    teaser rivers; 150 words of running prose make it an article whatever the chrome says."""
    nav = "".join(
        f'<li><a href="/section/{i}/">Section {i} headline number {i}</a></li>' for i in range(60)
    )
    prose = "".join(
        f"<p>The water board said on Monday that repair {w} on the old dam would take until the autumn, "
        f"because divers found more cracks than expected and the contractor needs new parts for job {w}.</p>"
        for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    )
    html = (
        f'<html><head><title>Dam repairs</title><meta property="og:type" content="website"></head>'
        f"<body><nav><ul>{nav}</ul></nav><main><div class='post'>{prose}</div></main>"
        f"<aside><ul>{nav}</ul></aside></body></html>"
    )
    article = extract_article(html, "https://blog.example/dam-repairs")
    assert article["page_kind"] == "article", article["page_kind"]


def test_nested_containers_from_the_fallback_extractors_keep_their_paragraphs_apart() -> None:
    from lxml import etree

    from pipelines.extract.blocks import _blocks

    body = etree.fromstring(
        "<body><div><div><p>NEW DELHI: </p><ref target='/topic/x'>Pakistan</ref><p>'s army said so.</p>"
        "<head rend='h2'>Repeated attacks</head><p>In recent months, he spoke.</p></div></div></body>"
    )
    texts = [b["text"] for b in _blocks(body)]
    assert texts == [
        "NEW DELHI:",
        "Pakistan",
        "'s army said so.",
        "Repeated attacks",
        "In recent months, he spoke.",
    ]
