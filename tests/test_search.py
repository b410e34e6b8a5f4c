"""Full-text search: stemming per language, BM25 ranking, filters, incremental index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from archive import search as S
from archive.db import writer
from archive.query import open_archive
from archive.tx import transaction
from tests.test_query import build_archive, run_cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_archive(tmp_path_factory.mktemp("s") / "archive.duckdb")


@pytest.fixture(scope="module")
def rcon(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """One reader for the read-only tests, as a notebook would keep it."""
    con = open_archive(db)
    yield con
    con.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """An archive of its own, for tests that write."""
    return build_archive(tmp_path / "archive.duckdb")


def find(target: Path | duckdb.DuckDBPyConnection, q: str, **kw: Any) -> list[S.Hit]:
    if not isinstance(target, Path):
        return S.search(target, q, **kw)
    con = open_archive(target)
    try:
        return S.search(con, q, **kw)
    finally:
        con.close()


def ids(hits: list[S.Hit]) -> list[int]:
    return [h.id for h in hits]


def add_article(con: duckdb.DuckDBPyConnection, id_: int, title: str, text: str, lang: str = "fr",
                outlet: str = "lemonde") -> None:  # fmt: skip
    now = datetime.now(UTC)
    con.execute(
        "INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language, text, "
        "first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            id_,
            outlet,
            f"https://x.example/{id_}",
            f"https://x.example/{id_}",
            title,
            now,
            lang,
            text,
            now,
            now,
        ],
    )


def test_french_inflections_meet(rcon: duckdb.DuckDBPyConnection) -> None:
    """Singular finds plural and back; 'électeurs' is not 'élection' (Snowball keeps them apart)."""
    assert set(ids(find(rcon, "élection", languages=["fr"]))) == {1, 2, 3}
    assert set(ids(find(rcon, "élections", languages=["fr"]))) == {1, 2, 3}
    assert set(ids(find(rcon, "municipale", languages=["fr"]))) == {1, 3}
    assert ids(find(rcon, "voter", languages=["fr"])) == [1]  # voteront


def test_accents_optional(rcon: duckdb.DuckDBPyConnection) -> None:
    assert set(ids(find(rcon, "election", languages=["fr"]))) == {1, 2, 3}


def test_each_article_in_its_language(rcon: duckdb.DuckDBPyConnection) -> None:
    assert ids(find(rcon, "voters", languages=["en"])) == [4]  # english stemmer: voters ~ voter
    assert ids(find(rcon, "Frankreich")) == [5]
    assert ids(find(rcon, "wahl")) == [5]  # german: Wahlen -> wahl
    assert ids(find(rcon, "rain")) == [6]  # no language: exact words still found


def test_better_match_ranks_first(rcon: duckdb.DuckDBPyConnection) -> None:
    hits = find(rcon, "municipales gauche")
    assert ids(hits)[:2] == [1, 3]  # both words (title and text) beat one word in a title
    assert hits[0].score > hits[1].score > 0
    # The title counts: the article *about* elections beats a passing mention.
    assert ids(find(rcon, "élections", languages=["fr"]))[0] == 1


def test_snippet_marks_matched_words(rcon: duckdb.DuckDBPyConnection) -> None:
    hits = find(rcon, "élection municipales", outlets=["lemonde"])
    assert hits[0].snippet.startswith("Les **élections** **municipales** approchent.")
    second = next(h for h in hits if h.id == 2)
    assert "Une **élection** professionnelle" in second.snippet and second.snippet.startswith("… ")


def test_filters(rcon: duckdb.DuckDBPyConnection) -> None:
    assert ids(find(rcon, "élection", outlets=["liberation"])) == [3]
    assert set(ids(find(rcon, "élection", outlets=["liberation", "lemonde"]))) == {1, 2, 3}
    assert ids(find(rcon, "elections", languages=["en"])) == [4]
    assert set(ids(find(rcon, "élection", since=datetime(2026, 11, 29, tzinfo=UTC)))) == {2, 3}
    assert ids(find(rcon, "élection", until=datetime(2026, 11, 29, tzinfo=UTC))) == [1]
    assert len(find(rcon, "élection", limit=2)) == 2
    assert find(rcon, "") == [] and find(rcon, "zzzzunknown") == []


def test_index_updates_without_rebuild(fresh: Path) -> None:
    with writer(fresh) as con:
        before = con.execute("SELECT article_id, len FROM search_docs ORDER BY 1").fetchall()
        postings_before = con.execute("SELECT count(*) FROM search_postings").fetchone()
        con.execute("BEGIN")
        add_article(
            con, 50, "Réforme des retraites", "Le gouvernement présente la réforme des retraites."
        )
        assert S.index_articles(con, [50]) == 1
        con.execute("COMMIT")
        after = con.execute("SELECT article_id, len FROM search_docs ORDER BY 1").fetchall()
        added = con.execute("SELECT count(*) FROM search_postings WHERE article_id = 50").fetchone()
        total = con.execute("SELECT count(*) FROM search_postings").fetchone()
    assert after == sorted([*before, (50, after[-1][1])])  # the others untouched
    assert postings_before and added and total and total[0] == postings_before[0] + added[0]
    assert ids(find(fresh, "retraite")) == [50]
    assert ids(find(fresh, "gouvernements")) == [50]


def test_reindex_after_update_and_remove(fresh: Path) -> None:
    with writer(fresh) as con, transaction(con):
        con.execute("UPDATE articles SET text = 'Le pain est cher.', version = 2 WHERE id = 2")
        S.index_articles(con, [2])
    assert 2 not in ids(find(fresh, "élection"))
    assert ids(find(fresh, "pain")) == [2]
    with writer(fresh) as con:  # the old text's postings: ignored, then swept
        con.execute("BEGIN")
        assert S.compact_index(con) > 0
        assert S.compact_index(con) == 0
        con.execute("COMMIT")
    assert ids(find(fresh, "pain")) == [2] and 2 not in ids(find(fresh, "élection"))
    with writer(fresh) as con:
        assert con.execute("SELECT version FROM search_docs WHERE article_id = 2").fetchall() == [
            (2,)
        ]
        con.execute("BEGIN")
        S.remove_articles(con, [2])
        con.execute("COMMIT")
    assert find(fresh, "pain") == []


def test_rollback_takes_the_index_along(fresh: Path) -> None:
    with writer(fresh) as con:
        con.execute("BEGIN")
        add_article(con, 60, "Grève", "Une grève nationale.")
        S.index_articles(con, [60])
        con.execute("ROLLBACK")
    assert find(fresh, "grève") == []


def test_incremental_equals_rebuild(fresh: Path) -> None:
    with writer(fresh) as con, transaction(con):
        add_article(
            con, 70, "Élections en Belgique", "Les élections législatives belges.", outlet="rtbf"
        )
        S.index_articles(con, [70])
    incremental = [(h.id, h.score) for h in find(fresh, "élections belges")]
    with writer(fresh) as con, transaction(con):
        assert S.rebuild_index(con) == 7
    assert [(h.id, h.score) for h in find(fresh, "élections belges")] == incremental
    assert incremental[0][0] == 70


def test_index_pending_catches_up(fresh: Path) -> None:
    with writer(fresh) as con:
        con.execute("BEGIN")
        add_article(con, 80, "Sans index", "Un article arrivé sans passer par l'index.")
        con.execute(
            "UPDATE articles SET version = 3, text = 'Texte révisé sur la météo.' WHERE id = 6"
        )
        con.execute("COMMIT")
        con.execute("BEGIN")
        assert S.index_pending(con) == 2
        con.execute("COMMIT")
        con.execute("BEGIN")
        assert S.index_pending(con) == 0
        con.execute("COMMIT")
    assert ids(find(fresh, "arrivé")) == [80]
    assert ids(find(fresh, "météo")) == [6]


def test_empty_article_is_indexed_once(fresh: Path) -> None:
    with writer(fresh) as con, transaction(con):
        add_article(con, 90, "", "")
        assert S.index_articles(con, [90]) == 1
        assert S.index_pending(con) == 0


def test_cli_search(fresh: Path) -> None:
    # Not `db`: the module's open reader would share its DuckDB instance with the command's
    # sandboxed one, and the sandbox locks the instance's settings.
    db = fresh
    r = run_cli("search", "élections", "municipales", "--format", "json", "--db", str(db))
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert hits[0]["id"] == 1
    assert set(hits[0]) == {
        "id",
        "url",
        "outlet",
        "title",
        "published_at",
        "language",
        "score",
        "snippet",
    }
    assert hits[0]["published_at"] == "2026-11-28T07:30:00+00:00"
    assert hits == sorted(hits, key=lambda h: -h["score"])
    r = run_cli("search", "élection", "--outlet", "liberation", "--since", "2026-11-29", "--format", "jsonl",
                "--db", str(db))  # fmt: skip
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [3]
    r = run_cli("search", "élection", "--format", "csv", "--lang", "fr", "--db", str(db))
    assert r.stdout.splitlines()[0] == "id,url,outlet,title,published_at,language,score,snippet"
    r = run_cli("search", "élection", "--db", str(db))
    assert r.exit_code == 0 and "**élections**" in r.stdout and "3 hits" in r.stdout
    r = run_cli("search", "x", "--since", "yesterday", "--db", str(db))
    assert r.exit_code == 1 and r.stderr.startswith("error: bad date")


# --- syntax (issue 18 item 5): phrases, required, excluded, prefixes; the same from SQL ---------


@pytest.mark.parametrize(
    "q,expected",
    [
        ('"élections municipales"', [1]),  # the phrase, not both words anywhere
        ("élection -paris", [1, 2]),  # article 3 says "Paris"
        ("+municipales élection", [1, 3]),  # required word
        ("élection AND sondage", [3]),
        ("sondage OR boulangers", [3, 2]),
        ("élec*", [1, 4, 3, 2]),  # prefix alone: ranked by how often it occurs
        ("+élection boulang*", [2]),
        ("-élection", []),  # nothing positive: nothing
    ],
)
def test_query_syntax(rcon: duckdb.DuckDBPyConnection, q: str, expected: list[int]) -> None:
    assert ids(find(rcon, q)) == expected


def test_plain_words_are_still_ranked_and_or_ed(rcon: duckdb.DuckDBPyConnection) -> None:
    assert ids(find(rcon, "élections municipales")) == [1, 3, 2]


@pytest.mark.parametrize(
    "q",
    [
        "élections municipales",
        "élection",
        "voters",
        '"élections municipales"',
        "élection -paris",
        "élec*",
    ],
)
def test_sql_macro_gives_the_same_hits_and_scores(rcon: duckdb.DuckDBPyConnection, q: str) -> None:
    rows = rcon.execute(
        "SELECT article_id, score FROM search_articles($q) ORDER BY score DESC, article_id DESC",
        {"q": q},
    ).fetchall()
    assert rows == [(h.id, h.score) for h in find(rcon, q, limit=100)]


def test_hits_per_day_is_one_sql_statement(fresh: Path) -> None:
    sql = (
        "SELECT CAST(published_at AS DATE) AS day, count(*) AS hits FROM search_articles('élection -boulangers') "
        "GROUP BY 1 ORDER BY 1"
    )
    r = run_cli("query", sql, "--format", "json", "--db", str(fresh))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [
        {"day": "2026-11-28", "hits": 1},
        {"day": "2026-11-29", "hits": 1},
    ]


def test_cli_search_with_syntax(fresh: Path) -> None:
    r = run_cli("search", '"élections municipales"', "--format", "json", "--db", str(fresh))
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert [h["id"] for h in hits] == [1] and "**élections**" in hits[0]["snippet"]
    help_text = run_cli("search", "--help").stdout
    assert '"a phrase"' in help_text and "-word" in help_text and "pre*" in help_text
