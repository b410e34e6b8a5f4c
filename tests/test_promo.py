"""Promotion stripping: the seed article, each markup family, each language, the precision
guards (topic, quotes, share), outlet overrides and rule-file validation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from archive.text import word_count
from pipelines.promo import (
    MAX_SHARE,
    RULES_VERSION,
    PromoRuleError,
    compile_outlet_rules,
    load_rules,
    paragraph_hash,
    strip_promotions,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED = SHARED / "seed"

FILLER = [
    "The regional council voted on Tuesday to extend the tram line by four kilometres, a project first announced in 2019 and repeatedly delayed by disputes over funding.",
    "Officials said construction would start next spring and last about three years, with temporary bus services replacing trams on the busiest section of the route.",
    "Residents of the northern districts welcomed the decision, while shop owners on the avenue fear that months of roadworks will drive their customers away.",
    "The transport authority estimates the cost at 240 million euros, two thirds of which will come from the national government and the rest from local budgets.",
    "Opposition councillors said the plan ignores the outer suburbs, where many residents still depend on their cars to reach work and school every day.",
    "A public inquiry will open in March, and the final route could still change if the independent commission finds that the environmental impact is too high.",
    "Engineers must also move water mains and cables under the avenue, a task that has caused long delays on similar projects in other cities in recent years.",
    "The mayor said she was confident the line would be finished before the next election, though she conceded that the timetable was ambitious.",
]


def _article(
    paras: list[str],
    *,
    lang: str = "en",
    kinds: list[str] | None = None,
    links: list[int] | None = None,
    title: str = "Tram line extended",
) -> dict:
    blocks = [
        {"kind": (kinds[i] if kinds else "p"), "text": t, "link_chars": (links[i] if links else 0)}
        for i, t in enumerate(paras)
    ]
    text = "\n\n".join(paras)
    return {
        "title": title,
        "language": lang,
        "blocks": blocks,
        "text": text,
        "word_count": len(text.split()),
    }


def _html(inner: str) -> str:
    return f"<html><body><article><div class='article-body'>{inner}</div></article></body></html>"


def _p(paras: list[str]) -> str:
    return "".join(f"<p>{p}</p>" for p in paras)


# ---------------------------------------------------------------- the seed article


def test_seed_article_loses_its_magazine_pitch_and_nothing_else() -> None:
    from pipelines.extract import extract_article

    html = (SEED / "article.html").read_text(encoding="utf-8")
    article = extract_article(
        html, "https://courrier-strategique.example/geopolitique/trump-poutine-appel-ordre-mondial/"
    )
    stripped, removed = strip_promotions(article, html)

    assert "IMPORTANT - À lire" not in stripped["text"]
    assert "Abonnez-vous" not in stripped["text"]
    assert "Notre revue papier" not in stripped["text"]
    assert stripped["promo_flagged"] is False
    assert [r["text"][:20] for r in removed] == [
        "IMPORTANT - À lire",
        "Découvrez chaque moi",
        "Plongez au cœur des ",
    ]
    assert {r["kind"] for r in removed} == {"subscription"}
    assert all(r["rule"] for r in removed)
    assert [r["position"] for r in removed] == [
        len(article["blocks"]) - 3,
        len(article["blocks"]) - 2,
        len(article["blocks"]) - 1,
    ]

    expected = [
        line
        for line in (SEED / "article.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    # the last three lines are the pitch; the key-points heading is the extractor's to keep or not
    keep = [line for line in expected[:-3] if not line.startswith("🔥")]
    kept_text = stripped["text"] + "\n" + (stripped.get("summary") or "")
    for line in keep:
        line = line.lstrip("- ").strip()
        assert line in kept_text, line
    # the key-points box is editorial: kept (as the summary or in the body)
    assert "Trump et Poutine discutent une heure au téléphone" in kept_text
    assert stripped["word_count"] == word_count(stripped["text"])  # one definition for every stage
    assert stripped["text"] == "\n\n".join(b["text"] for b in stripped["blocks"])


def test_input_article_is_not_mutated() -> None:
    art = _article([*FILLER, "Subscribe now to get unlimited digital access."])
    before = copy.deepcopy(art)
    out, removed = strip_promotions(art)
    assert art == before
    assert len(removed) == 1 and len(out["blocks"]) == len(FILLER)


# ---------------------------------------------------------------- markup families

PITCH = "Get the best of our reporting every week from the team behind this story."


@pytest.mark.parametrize(
    ("wrapper", "kind"),
    [
        ('<div class="subscribe-box">{}</div>', "subscription"),
        ('<div class="css-1x2y3z e8f7g6h promo">{}</div>', "subscription"),
        ('<div class="DonateBanner-sc-3f4e5d k9j8h7">{}</div>', "donation"),
        ('<section aria-label="Newsletter sign-up">{}</section>', "newsletter"),
        ('<div data-component="app-banner">{}</div>', "app"),
        ('<div class="inline-promo" id="x"><div class="inner">{}</div></div>', "subscription"),
    ],
)
def test_marked_up_boxes_are_removed(wrapper: str, kind: str) -> None:
    html = _html(_p(FILLER[:4]) + wrapper.format(f"<p>{PITCH}</p>") + _p(FILLER[4:]))
    art = _article([*FILLER[:4], PITCH, *FILLER[4:]])
    out, removed = strip_promotions(art, html)
    assert [r["text"] for r in removed] == [PITCH]
    assert removed[0]["kind"] == kind
    assert removed[0]["rule"].startswith("markup.")
    assert removed[0]["position"] == 4
    assert out["text"] == "\n\n".join(FILLER)


@pytest.mark.parametrize(
    "wrapper",
    [
        '<div class="c-paywall__inner">{}</div>',
        '<div data-paywall="true">{}</div>',
        '<div class="piano-inline-content-wrapper">{}</div>',
        '<section class="article-body paywalled">{}</section>',
    ],
)
def test_a_paywall_container_is_gated_article_text_not_a_promotion(wrapper: str) -> None:
    """Metered sites put paywall / piano classes on the body or on each paragraph: the text
    stays, the article is flagged paywalled, and only a pitch inside the box goes."""
    pitch = "Subscribe now to get unlimited digital access."
    html = _html(_p(FILLER[:2]) + wrapper.format(_p([*FILLER[2:6], PITCH, pitch])) + _p(FILLER[6:]))
    art = _article([*FILLER[:6], PITCH, pitch, *FILLER[6:]])
    out, removed = strip_promotions(art, html)
    assert [r["text"] for r in removed] == [pitch]
    assert out["paywalled"] is True
    assert all(line in out["text"] for line in [*FILLER, PITCH])


def test_a_parsed_tree_can_be_passed_instead_of_html() -> None:
    import lxml.html

    html = _html(_p(FILLER[:4]) + f'<div class="app-promo"><p>{PITCH}</p></div>')
    tree = lxml.html.document_fromstring(html)
    _, removed = strip_promotions(_article([*FILLER[:4], PITCH]), tree=tree)
    assert [r["kind"] for r in removed] == ["app"]


def test_keypoints_box_and_article_wide_paywall_wrapper_are_not_promotions() -> None:
    keypoints = "Key points: the council voted to subscribe to the regional transport plan."
    html = (
        "<html><body><article><div class='paywall-content article-body'>"
        f"<div class='key-points promo'><p>{keypoints}</p></div>{_p(FILLER)}</div></article></body></html>"
    )
    out, removed = strip_promotions(_article([keypoints, *FILLER]), html)
    assert removed == []
    assert out["blocks"][0]["text"] == keypoints


def test_hashed_class_names_alone_are_not_promotions() -> None:
    html = _html(f'<div class="css-1x2y3z e8f7g6h">{_p(FILLER)}</div>')
    _, removed = strip_promotions(_article(FILLER), html)
    assert removed == []


def test_inline_read_also_teaser_with_link_is_removed_anywhere() -> None:
    teaser = "À lire aussi : Réforme des retraites, ce qui change au 1er janvier"
    art = _article(
        [*FILLER[:3], teaser, *FILLER[3:]], lang="fr", links=[0, 0, 0, 50, 0, 0, 0, 0, 0]
    )
    out, removed = strip_promotions(art)
    assert [(r["kind"], r["position"]) for r in removed] == [("read_also", 3)]
    assert teaser not in out["text"]


def test_read_also_label_takes_its_link_list_with_it() -> None:
    paras = [*FILLER, "Read more", "Inflation numbers worry the Fed\nCheaper batteries race"]
    art = _article(paras, kinds=["p"] * 8 + ["head", "list"], links=[0] * 8 + [0, 50])
    _, removed = strip_promotions(art)
    assert [r["kind"] for r in removed] == ["read_also", "read_also"]


# ---------------------------------------------------------------- languages

TAIL_PITCHES = {
    "fr": (
        "Abonnez-vous à notre édition numérique pour 1 € le premier mois, sans engagement.",
        "subscription",
    ),
    "en": (
        "Sign up for our free daily newsletter and get the top stories delivered to your inbox.",
        "newsletter",
    ),
    "de": (
        "Unabhängiger Journalismus kostet Geld: Unterstützen Sie uns mit einem Beitrag. Jetzt spenden!",
        "donation",
    ),
    "es": ("Descarga nuestra app gratuita y recibe las últimas noticias en tu móvil.", "app"),
    "it": ("Seguici su Instagram e Facebook per non perdere nessuna notizia.", "social"),
    "pt": ("Garanta seu ingresso para o nosso congresso anual de inovação em São Paulo.", "event"),
    "nl": (
        "Het boek bij de serie is nu te koop in onze webshop. Bestel nu met gratis verzending.",
        "shop",
    ),
}


@pytest.mark.parametrize("lang", sorted(TAIL_PITCHES))
def test_each_language_tail_pitch_is_removed(lang: str) -> None:
    pitch, kind = TAIL_PITCHES[lang]
    out, removed = strip_promotions(_article([*FILLER, pitch], lang=lang))
    assert [(r["kind"], r["text"]) for r in removed] == [(kind, pitch)]
    assert out["text"] == "\n\n".join(FILLER)


@pytest.mark.parametrize(
    ("lang", "lead"),
    [("fr", "Lire aussi"), ("en", "Read also"), ("de", "Lesen Sie auch"), ("es", "Lee también"),
     ("it", "Leggi anche"), ("pt", "Leia também"), ("nl", "Lees ook")],
)  # fmt: skip
def test_each_language_read_also_teaser_is_removed(lang: str, lead: str) -> None:
    teaser = f"{lead}: Ten things to know about the new budget"
    _, removed = strip_promotions(_article([*FILLER[:4], teaser, *FILLER[4:]], lang=lang))
    assert [r["kind"] for r in removed] == ["read_also"]


def test_head_pitch_is_removed() -> None:
    pitch = "Download our app to get breaking news alerts on your phone."
    _out, removed = strip_promotions(_article([pitch, *FILLER]))
    assert [r["position"] for r in removed] == [0]


def test_plain_tail_paragraph_next_to_a_pitch_stays_without_promo_words() -> None:
    last = FILLER[-1]
    out, removed = strip_promotions(_article([*FILLER, "Subscribe now. Cancel anytime."]))
    assert last in out["text"] and len(removed) == 1


# ---------------------------------------------------------------- precision guards

ABOUT_SUBSCRIPTIONS = [
    "Streaming services raised the price of their subscriptions again this month, with the standard plan now costing $17.99 per month.",
    "Analysts say the average household pays for four subscriptions, but more subscribers than ever cancel at least one service each year.",
    "Regulators want cancelling a subscription to be as easy as signing up, and a new rule requires a one-click cancellation button.",
    "Some companies now offer bundles, giving subscribers a discount when they sign up for several platforms at once.",
]


def test_article_about_subscriptions_stays_whole() -> None:
    paras = [ABOUT_SUBSCRIPTIONS[0], FILLER[0], *ABOUT_SUBSCRIPTIONS[1:], FILLER[1]]
    out, removed = strip_promotions(_article(paras, title="Streaming subscriptions get pricier"))
    assert removed == []
    assert out["text"] == "\n\n".join(paras)


def test_article_about_subscriptions_still_loses_its_own_pitch_but_not_its_last_paragraph() -> None:
    pitch = "Subscribe now for unlimited digital access. Cancel anytime."
    paras = [
        *ABOUT_SUBSCRIPTIONS,
        FILLER[0],
        ABOUT_SUBSCRIPTIONS[3].replace("Some", "Other"),
        pitch,
    ]
    _out, removed = strip_promotions(_article(paras, title="Streaming subscriptions get pricier"))
    assert [r["text"] for r in removed] == [pitch]


def test_quotes_with_promo_words_stay() -> None:
    quote = "Subscribe now and never miss a story, cancel anytime, the advert said."
    inline = "“Download our app and win a prize,” read the scam message, according to the police."
    paras = [*FILLER[:4], quote, *FILLER[4:], inline]
    art = _article(paras, kinds=["p"] * 4 + ["quote"] + ["p"] * 5)
    _out, removed = strip_promotions(art)
    assert removed == []


def test_reported_speech_with_promo_words_stays() -> None:
    said = "We built the feature in our app because readers asked for it, the chief executive said on Monday."
    paras = [*FILLER[:4], said, *FILLER[4:]]
    _, removed = strip_promotions(_article(paras))
    assert removed == []


def test_share_guard_keeps_article_whole_and_flags_it() -> None:
    pitch = [
        "Subscribe now for unlimited digital access to all our journalism.",
        "Sign up for our free newsletter and get the top stories in your inbox.",
        "Download our app to get breaking news alerts.",
    ]
    art = _article([FILLER[0], FILLER[1], *pitch])
    out, removed = strip_promotions(art)
    assert removed == []
    assert out["promo_flagged"] is True
    assert out["text"] == art["text"]
    assert MAX_SHARE <= 0.25


# ---------------------------------------------------------------- outlet overrides


def test_outlet_pattern_wins_over_generic_rules() -> None:
    sponsor = "This content was produced in partnership with Acme Bank."
    rules = compile_outlet_rules([], [r"in partnership with acme"])
    _out, removed = strip_promotions(_article([*FILLER, sponsor]), outlet_rules=rules)
    assert [(r["kind"], r["rule"]) for r in removed] == [
        ("custom", "outlet.pattern:in partnership with acme")
    ]


def test_outlet_pattern_wins_over_topic_guard() -> None:
    paras = [
        ABOUT_SUBSCRIPTIONS[0],
        FILLER[0],
        *ABOUT_SUBSCRIPTIONS[1:],
        "Subscriptions: our daily deal on streaming.",
    ]
    rules = compile_outlet_rules([], ["^Subscriptions: our daily deal"])
    _, removed = strip_promotions(
        _article(paras, title="Streaming subscriptions"), outlet_rules=rules
    )
    assert [r["kind"] for r in removed] == ["custom"]


def test_outlet_selector_removes_blocks_inside_it() -> None:
    line = "Our partners at the county museum have prepared a special exhibition this winter."
    html = _html(_p(FILLER) + f'<div class="xyz-museum-box"><p>{line}</p></div>')
    rules = compile_outlet_rules(["div.xyz-museum-box"], [])
    _out, removed = strip_promotions(_article([*FILLER, line]), html, outlet_rules=rules)
    assert [(r["kind"], r["rule"]) for r in removed] == [
        ("custom", "outlet.selector:div.xyz-museum-box")
    ]
    # without the override the generic rules keep it
    assert strip_promotions(_article([*FILLER, line]), html)[1] == []


@pytest.mark.parametrize(
    ("selectors", "patterns", "needle"),
    [
        (["div..bad"], [], "div..bad"),
        (["p:unknown-pseudo"], [], "p:unknown-pseudo"),
        ([], ["(unclosed"], "(unclosed"),
        ([""], [], "''"),
    ],
)
def test_bad_outlet_rules_raise_naming_the_entry(
    selectors: list[str], patterns: list[str], needle: str
) -> None:
    with pytest.raises(ValueError, match=__import__("re").escape(needle)):
        compile_outlet_rules(selectors, patterns)


# ---------------------------------------------------------------- rule files


def _write_rules(tmp_path: Path, body: str, name: str = "xx.toml") -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(body, encoding="utf-8")
    return d


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            'language = "xx"\n[[rule]]\nid = "xx.bad"\nkind = "subscription"\ncue = "strong"\nregex = ["(oops"]\n',
            "rule 'xx.bad': regex '(oops'",
        ),
        (
            'language = "xx"\n[[rule]]\nid = "xx.kind"\nkind = "spam"\ncue = "strong"\nphrases = ["a b"]\n',
            "rule 'xx.kind': 'kind' must be",
        ),
        (
            'language = "xx"\n[[rule]]\nid = "xx.cue"\nkind = "app"\ncue = "loud"\nphrases = ["a b"]\n',
            "rule 'xx.cue': 'cue' must be",
        ),
        (
            'language = "xx"\n[[rule]]\nid = "xx.gap"\nkind = "app"\ncue = "strong"\nphrases = ["* app"]\n',
            "rule 'xx.gap': phrase '* app'",
        ),
        (
            'language = "xx"\n[[rule]]\nid = "xx.key"\nkind = "app"\ncue = "strong"\nphrase = ["app"]\n',
            "rule 'xx.key': unknown keys ['phrase']",
        ),
        (
            'language = "xx"\n[[rule]]\nkind = "app"\ncue = "strong"\nphrases = ["app"]\n',
            "rule #1: 'id'",
        ),
        (
            'language = "english"\n[[rule]]\nid = "a"\nkind = "app"\ncue = "strong"\nphrases = ["app"]\n',
            "'language'",
        ),
        ('language = "xx"\n[[rule]\n', "not valid TOML"),
        (
            'language = "markup"\n[[box]]\nid = "m.x"\nkind = "app"\nnames = ["App Banner"]\n',
            "box 'm.x': name 'App Banner'",
        ),
    ],
)
def test_bad_rule_files_raise_naming_file_and_entry(tmp_path: Path, body: str, needle: str) -> None:
    d = _write_rules(tmp_path, body)
    with pytest.raises(PromoRuleError) as err:
        load_rules(d)
    assert "xx.toml" in str(err.value)
    assert needle in str(err.value)


def test_custom_rule_directory_is_used(tmp_path: Path) -> None:
    d = _write_rules(
        tmp_path,
        'language = "en"\n[[rule]]\nid = "en.x"\nkind = "shop"\ncue = "strong"\nphrases = ["grab * mug"]\n',
    )
    rules = load_rules(d)
    assert rules.version != RULES_VERSION
    _, removed = strip_promotions(_article([*FILLER, "Grab our brand new mug today."]), rules=rules)
    assert [(r["kind"], r["rule"]) for r in removed] == [("shop", "en.x")]


def test_default_rules_cover_seven_languages_and_are_cached() -> None:
    rules = load_rules()
    assert {"fr", "en", "de", "es", "it", "pt", "nl"} <= rules.languages
    assert load_rules() is rules
    assert rules.version == RULES_VERSION and len(RULES_VERSION) == 12


def test_paragraph_hash_normalises_case_spacing_accents_and_digits() -> None:
    a = paragraph_hash("Offre spéciale : 1 € le premier mois jusqu'au 12 mai !")
    b = paragraph_hash("  offre SPECIALE: 2 € le premier  mois jusqu'au 19 mai")
    assert a == b
    assert a != paragraph_hash("Another paragraph entirely")


# ---------------------------------------------------------------- the labelled evaluation set


def test_eval_set_is_large_varied_deterministic_and_small_on_disk() -> None:
    from tests.promo_eval.generate import FAMILIES, HERE, LANGS, build_pages

    pages = build_pages("tune")
    assert len(pages) >= 150
    assert {p.lang for p in pages} == set(LANGS)
    assert {p.family for p in pages} == set(FAMILIES)
    assert sum(p.hard_negative for p in pages) >= 30
    assert any(not p.promo for p in pages if p.hard_negative)  # some have no promotion at all
    held = build_pages("heldout")
    assert {p.lang for p in held} == set(LANGS) and len(held) >= 50
    again = build_pages("tune")
    assert [(p.id, p.html) for p in again] == [(p.id, p.html) for p in pages]
    size = sum(f.stat().st_size for f in HERE.iterdir() if f.is_file())
    assert size < 300_000


def test_eval_sample_meets_targets_on_the_full_path() -> None:
    """A quick slice of bench/promo_quality.py (synthetic pages of every language)."""
    from pipelines.extract import extract_article
    from tests.promo_eval.generate import build_pages
    from tests.promo_eval.score import Tally, score_page

    pages = [p for p in build_pages("tune") if "zyte" not in p.url][::2]
    total = Tally()
    for page in pages:
        article = extract_article(page.html, page.url)
        stripped, removed = strip_promotions(article, page.html)
        total.add(
            score_page(page, stripped["text"], removed, article["text"], stripped["promo_flagged"])
        )
    assert total.promo >= 50
    assert total.leaked_share <= 0.05, total.leaks
    assert total.lost_by_strip == 0, total.losses
    assert total.precision is not None and total.precision >= 0.98
    assert total.pages_strip_over_20 == 0


def test_empty_article_and_odd_html_are_harmless() -> None:
    out, removed = strip_promotions(
        {"blocks": [], "text": "", "page_kind": "empty"}, "<html></html>"
    )
    assert removed == [] and out["promo_flagged"] is False and out["text"] == ""
    xml_decl = '<?xml version="1.0" encoding="utf-8"?>' + _html(
        _p(FILLER) + f'<div class="subscribe-box"><p>{PITCH}</p></div>'
    )
    _, removed = strip_promotions(_article([*FILLER, PITCH]), xml_decl)
    assert [r["kind"] for r in removed] == ["subscription"]
    _, removed = strip_promotions(_article([*FILLER, PITCH]), "\x00not html at all")
    assert removed == []
