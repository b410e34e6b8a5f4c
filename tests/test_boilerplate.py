"""Boilerplate learned from the archive: a paragraph an outlet repeats at the end of its
articles is removed once seen in enough articles, whatever its words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.boilerplate import load_boilerplate, record_paragraphs
from archive.db import reader, writer
from pipelines.promo import paragraph_hash, strip_promotions
from tests.conftest import rows

WORDS = [
    "alder",
    "birch",
    "cedar",
    "dogwood",
    "elm",
    "fir",
    "ginkgo",
    "hazel",
    "juniper",
    "larch",
    "maple",
]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FOOTER = "The Springfield Courier is owned by the Springfield Foundation and published every weekday since 1887."


def _article(k: int, *, footer: str = FOOTER) -> dict:
    w = WORDS[k % len(WORDS)]  # distinct words: digits are folded by paragraph_hash
    paras = [
        f"Story {w}: the council met on day {w} to discuss the budget for the northern districts and the new tram depot.",
        f"Officials said item {w} on the agenda would be decided next week after a public hearing at the town hall.",
        f"Residents told reporters that issue number {w} had been raised many times before without any result so far.",
        f"The mayor promised an answer on question {w} before the end of the month, according to her spokesman.",
        f"Local businesses on avenue {w} fear months of roadworks, while commuters hope for shorter journeys to the centre.",
        f"The opposition said proposal {w} ignored the outer suburbs, where many families still rely on their cars every day.",
        f"Engineers must move water mains and cables under street {w} first, a job that caused long delays in other cities.",
        f"A public inquiry into plan {w} opens in the spring, and the final route could still change after the hearings.",
        footer,
    ]
    blocks = [{"kind": "p", "text": t, "link_chars": 0} for t in paras]
    return {
        "title": f"Story {k}",
        "language": "en",
        "blocks": blocks,
        "text": "\n\n".join(paras),
        "word_count": 0,
    }


def _boundary(article: dict) -> list[tuple[str, str]]:
    blocks = article["blocks"]
    picked = blocks[:2] + blocks[-3:]
    return [(paragraph_hash(b["text"]), b["text"]) for b in picked]


def test_repeated_tail_is_learned_after_min_articles_and_stripped(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    # without learning, the generic rules keep the footer: it has no promotional words
    assert strip_promotions(_article(0))[1] == []
    for k in range(3):
        with writer(db) as con:
            record_paragraphs(con, "courier", _boundary(_article(k)), T0 + timedelta(days=k))
    with writer(db) as con:
        assert load_boilerplate(con, "courier", now=T0 + timedelta(days=3)) == frozenset()
        record_paragraphs(con, "courier", _boundary(_article(3)), T0 + timedelta(days=3))
    with reader(db) as con:  # the crawl side opens the archive read-only
        learned = load_boilerplate(con, "courier", now=T0 + timedelta(days=4))
        row = con.execute(
            "SELECT articles, first_seen_at, last_seen_at, sample FROM paragraph_stats WHERE para_hash = ?",
            [paragraph_hash(FOOTER)],
        ).fetchone()
        other = load_boilerplate(con, "gazette", now=T0 + timedelta(days=4))
    assert learned == frozenset({paragraph_hash(FOOTER)})
    assert other == frozenset()
    assert row is not None and row[0] == 4 and row[3] == FOOTER
    assert row[1] == T0 and row[2] == T0 + timedelta(days=3)

    out, removed = strip_promotions(_article(9), boilerplate=learned)
    assert [(r["kind"], r["rule"], r["position"]) for r in removed] == [
        ("boilerplate", "boilerplate.outlet", 8)
    ]
    assert FOOTER not in out["text"]


def test_window_forgets_old_paragraphs_and_restarts_counts(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    with writer(db) as con:
        for k in range(5):
            record_paragraphs(con, "courier", _boundary(_article(k)), T0 + timedelta(days=k))
        assert load_boilerplate(con, "courier", now=T0 + timedelta(days=10))
        # not seen for two months: no longer boilerplate
        assert load_boilerplate(con, "courier", now=T0 + timedelta(days=60)) == frozenset()
        # seen again after the window: counting starts over
        record_paragraphs(con, "courier", _boundary(_article(10)), T0 + timedelta(days=90))
        assert load_boilerplate(con, "courier", now=T0 + timedelta(days=90)) == frozenset()
        row = con.execute(
            "SELECT articles FROM paragraph_stats WHERE para_hash = ?", [paragraph_hash(FOOTER)]
        ).fetchone()
        assert row is not None and row[0] == 1


def test_a_paragraph_repeated_inside_one_article_counts_once(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    h = paragraph_hash(FOOTER)
    with writer(db) as con:
        assert record_paragraphs(con, "courier", [(h, FOOTER)] * 5, T0) == 1
        assert record_paragraphs(con, "courier", [], T0) == 0
        assert load_boilerplate(con, "courier", min_articles=2, now=T0) == frozenset()


def test_digits_do_not_hide_a_repeated_block(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    with writer(db) as con:
        for k in range(4):
            footer = f"Offer ends {10 + k} May: the Courier weekend edition for {k + 1} euros."
            record_paragraphs(
                con, "courier", _boundary(_article(k, footer=footer)), T0 + timedelta(hours=k)
            )
        learned = load_boilerplate(con, "courier", now=T0 + timedelta(days=1))
    assert paragraph_hash("Offer ends 20 May: the Courier weekend edition for 9 euros.") in learned


def test_short_repeated_line_only_goes_with_the_block_it_heads() -> None:
    label = "From our newsroom"
    paras = [*(_article(1)["blocks"][i]["text"] for i in range(8)), label, FOOTER]
    art: dict[str, Any] = {
        "title": "x",
        "language": "en",
        "text": "",
        "blocks": [{"kind": "p", "text": t, "link_chars": 0} for t in paras],
    }
    learned = frozenset({paragraph_hash(label), paragraph_hash(FOOTER)})
    _, removed = strip_promotions(art, boilerplate=learned)
    assert [r["position"] for r in removed] == [8, 9]
    # the same short line alone, heading editorial text, stays
    art["blocks"].insert(
        9,
        {
            "kind": "p",
            "text": "The mayor later added a detail about the depot and its staff.",
            "link_chars": 0,
        },
    )
    _, removed = strip_promotions(art, boilerplate=learned)
    assert [r["position"] for r in removed] == [10]


PITCH = "Harbour Ledger readers meet on the first Thursday at the old boathouse for coffee and questions."
TOPICS = ["ferry", "harbour", "lighthouse", "fishery", "regatta", "shipyard"]


def _story(k: int) -> str:
    topic = TOPICS[k]
    paras = "".join(
        f"<p>The {topic} committee discussed point {w} of the {topic} plan on {topic} day, and the minutes "
        f"of item {w} show a long debate about the {topic} budget and the {topic} timetable.</p>"
        for w in WORDS[:6]
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{topic.title()} news</title>'
        f'<meta property="article:published_time" content="2024-05-1{k}T08:00:00Z"></head>'
        f"<body><article><h1>{topic.title()} news</h1>{paras}<p>{PITCH}</p></article></body></html>"
    )


def _feed(base: str, n: int) -> str:
    items = "".join(
        f"<item><title>{TOPICS[k].title()} news</title><link>{base}/2024/05/1{k}/{TOPICS[k]}</link></item>"
        for k in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Ledger</title>{items}</channel></rss>'


def test_articles_archived_before_a_block_was_learned_lose_it_too(
    tmp_path: Path, backend: str
) -> None:
    """A pitch no rule knows closes every article: once the outlet has enough articles it is
    learned, and the articles archived before that are cleaned again automatically (the
    removal stored as usual, the re-clean recorded in daemon_events). On both backends: a
    lake counts the paragraphs in PostgreSQL as its batches settle."""
    from tests.conftest import run_cli
    from tests.fakeweb import FakeWeb

    web = FakeWeb()
    for k in range(6):
        web.add(f"/2024/05/1{k}/{TOPICS[k]}", _story(k))
    web.start()
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "ledger"\nfeeds = ["{web.base}/feed.xml"]\nlanguage = "en"\n'
            "delay = 0\nconcurrency = 4\n"
        )
        db = backend
        for n in (3, 6):  # three articles, then three more: the pitch is learned at the fourth
            web.add("/feed.xml", _feed(web.base, n), content_type="application/rss+xml")
            done = run_cli("crawl", "--config", str(config), "--db", db)
            assert done.returncode == 0, done.stderr
    finally:
        web.stop()
    texts = rows(db, "SELECT text FROM articles ORDER BY id")
    removed = rows(db, "SELECT rule, text FROM removed_blocks WHERE text = ?", [PITCH])
    events = rows(
        db, "SELECT outlet, message FROM daemon_events WHERE kind = 'boilerplate_reclean'"
    )
    due = rows(db, "SELECT count(*) FROM boilerplate_due")[0]
    (counted,) = rows(
        db, "SELECT articles FROM paragraph_stats WHERE para_hash = ?", [paragraph_hash(PITCH)]
    )
    assert len(texts) == 6
    assert [PITCH in t for (t,) in texts] == [False] * 6, (
        "every article, the first ones included, lost the pitch"
    )
    assert len(removed) == 6 and {r for r, _ in removed} == {"boilerplate.outlet"}
    assert events and events[0][0] == "ledger" and "re-cleaned" in events[0][1]
    assert due == (0,)
    assert counted == (6,), "every new article counted once, before its stripping"
