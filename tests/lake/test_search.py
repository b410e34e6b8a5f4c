"""`mediawatch search` on a lake: PostgreSQL's text search over the lake's articles finds what
the file backend finds for the same archive (stemming per language, accents folded, the
query syntax), filters the same way, and says what to do when the lake has no index yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from archive.lake.search_index import IndexRow, ensure_index, index_articles
from archive.target import LakeTarget, parse_target
from tests import pg
from tests.conftest import run_cli
from tests.test_query import build_archive

# Queries whose hits both backends agree on (ranking aside): words in fr/en/de, a phrase with
# an exclusion, AND, filters. Where they differ: the lake folds accents before stemming, so
# "élections" also finds the English "elections" (the file backend stems first); prefixes
# match stems on the lake ("électi*" misses English "elections", stemmed "elect").
AGREED = [
    ("elections",),  # accents folded: the French articles too
    ('"la gauche" -paris',),
    ("municipales AND sondage",),
    ("wahlen",),
    ("voters",),
    ("prix pain",),
    ("élections", "--lang", "fr"),
    ("élections", "--outlet", "liberation"),
    ("sondage", "--since", "2026-11-29"),
]


def hit_ids(*args: str) -> list[int]:
    result = run_cli("search", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return sorted(h["id"] for h in json.loads(result.stdout))


def make_both(pg_server: pg.Server, database: str, tmp: Path) -> tuple[Path, str]:
    """The same archive as a file and as a lake (migrate builds the lake's search index)."""
    db = build_archive(tmp / "archive.duckdb")
    url = pg_server.url(database, tmp / "lake")
    moved = run_cli("migrate", "--from", str(db), "--to", url)
    assert moved.returncode == 0, moved.stderr
    assert "6 articles indexed for search" in moved.stderr, moved.stderr
    return db, url


@pytest.fixture(scope="module")
def both(
    pg_server: pg.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """Built once for the tests that only read it."""
    database = pg_server.create_database()
    try:
        yield make_both(pg_server, database, tmp_path_factory.mktemp("both"))
    finally:
        pg_server.drop_database(database)


@pytest.mark.parametrize("args", AGREED, ids=[" ".join(a) for a in AGREED])
def test_the_lake_finds_what_the_file_finds(both: tuple[Path, str], args: tuple[str, ...]) -> None:
    db, url = both
    on_file = hit_ids(*args, "--db", str(db))
    assert on_file, "a query of this table finds something"
    assert hit_ids(*args, "--db", url) == on_file


def test_hits_carry_the_article_and_a_marked_snippet(both: tuple[Path, str]) -> None:
    _, url = both
    result = run_cli("search", '"la gauche"', "--db", url, "--format", "json")
    (hit,) = json.loads(result.stdout)
    assert hit["outlet"] == "lemonde" and hit["language"] == "fr"
    assert hit["title"] == "Élections municipales : la gauche se rassemble"
    assert "**gauche**" in hit["snippet"] and hit["score"] > 0
    table = run_cli("search", "wahlen", "--db", url)
    assert "Wahlen in Frankreich" in table.stdout and "1 hit" in table.stdout


def test_a_new_version_replaces_the_old_text_and_a_replay_does_not(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    _, url = make_both(pg_server, pg_database, tmp_path)
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    url2 = "https://www.lemonde.fr/2026/11/30/prix-pain"
    newer = IndexRow(
        2, 2, "lemonde", "fr", None, "Le prix du pain", "La baguette coûte plus.", url2
    )
    older = IndexRow(2, 1, "lemonde", "fr", None, "Le prix du pain", "Ancien texte.", url2)
    with psycopg.connect(target.libpq()) as con:
        prefix = ensure_index(con)
        index_articles(con, [newer], prefix)
        index_articles(con, [older], prefix)  # a replayed older batch
    assert hit_ids("baguette", "--db", url) == [2]
    assert hit_ids("ancien", "--db", url) == []


def test_a_bad_query_is_one_line(both: tuple[Path, str]) -> None:
    _, url = both
    result = run_cli("search", '"unclosed', "--db", url)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "unclosed quote" in result.stderr


def test_a_lake_without_an_index_says_to_reindex_and_reindex_rebuilds_it(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """A lake made before its search index existed (the index dropped here stands for it)."""
    _, url = make_both(pg_server, pg_database, tmp_path)
    with psycopg.connect(pg_server.conninfo(pg_database), autocommit=True) as con:
        con.execute("DROP TABLE mediawatch.search_index")
    before = run_cli("search", "élections", "--db", url)
    assert before.returncode == 1 and before.stderr.count("\n") == 1, before.stderr
    assert "no search index yet" in before.stderr and "mediawatch reindex" in before.stderr
    indexed = run_cli("reindex", "--db", url)
    assert indexed.returncode == 0 and indexed.stderr.startswith("6 articles indexed"), (
        indexed.stderr
    )
    assert hit_ids("wahlen", "--db", url) == [5]


def test_a_search_reads_nothing_from_the_lakes_files(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """The hits and their snippets come from PostgreSQL: with the lake's Parquet files gone
    (a slow or unreachable store stands for it) a search still answers, whole."""
    _, url = make_both(pg_server, pg_database, tmp_path)
    compacted = run_cli("compact", "--db", url)  # the rows flushed from the catalog to Parquet
    assert compacted.returncode == 0, compacted.stderr
    assert list((tmp_path / "lake").rglob("*.parquet"))
    before = run_cli("search", '"la gauche"', "--db", url, "--format", "json")
    (tmp_path / "lake").rename(tmp_path / "elsewhere")
    after = run_cli("search", '"la gauche"', "--db", url, "--format", "json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout) != []


def test_an_index_from_before_the_hit_columns_reads_its_hits_from_the_lake(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """A lake indexed by an older mediawatch: its rows lack url, title and text; a writer that
    opens it adds the columns, and its hits are read from the lake until a reindex."""
    _, url = make_both(pg_server, pg_database, tmp_path)
    before = json.loads(run_cli("search", "élections", "--db", url, "--format", "json").stdout)
    with psycopg.connect(pg_server.conninfo(pg_database), autocommit=True) as con:
        con.execute("ALTER TABLE mediawatch.search_index DROP COLUMN url, DROP COLUMN title, "
                    "DROP COLUMN body")  # fmt: skip
        ensure_index(con)
        missing = con.execute("SELECT count(*) FROM mediawatch.search_index WHERE url IS NULL")
        assert missing.fetchone() == (6,)
    after = json.loads(run_cli("search", "élections", "--db", url, "--format", "json").stdout)
    assert after == before and len(before) >= 3


def test_the_configurations_searched_are_kept_beside_the_index(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """A query is built for each configuration the index holds: they are kept in a table of
    their own as articles are indexed (a DISTINCT over the index cost 0.4 s a search at 1M),
    filled once for a lake indexed before it existed."""
    _, url = make_both(pg_server, pg_database, tmp_path)
    with psycopg.connect(pg_server.conninfo(pg_database), autocommit=True) as con:

        def kept() -> set[str]:
            return {
                str(c) for (c,) in con.execute("SELECT config::text FROM mediawatch.search_configs")
            }

        indexed = {
            str(c)
            for (c,) in con.execute("SELECT DISTINCT config::text FROM mediawatch.search_index")
        }
        assert kept() == indexed and len(indexed) >= 3, indexed
        index_articles(con, [IndexRow(99, 1, "nrk", "no", None, "Valg", "Valget i Norge.", "u")])
        assert kept() == indexed | {"mediawatch.norwegian"}
        assert hit_ids("valget", "--db", url) == [99], "the new language is searched"
        con.execute("DROP TABLE mediawatch.search_configs")  # a lake indexed by an older version
        assert hit_ids("valget", "--db", url) == [99]
        ensure_index(con)
        assert kept() == indexed | {"mediawatch.norwegian"}
