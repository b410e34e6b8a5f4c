"""What a new user hits in the first hour (issue 18): data printed as data, typos refused,
outputs that cannot overwrite the archive, the README's notebook lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive import query
from archive.db import writer
from archive.search import index_articles
from tests.test_query import build_archive, run_cli

MARKUP_TITLE = "[update] Election results"
MARKUP_TEXT = "Click [/button] to [bold]subscribe[/bold] and read [red]more[/]."


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = build_archive(tmp_path / "archive.duckdb")
    now = datetime.now(UTC)
    with writer(path) as con:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language, text, "
            "first_seen_at, last_seen_at) VALUES (50, 'bbc', 'https://bbc.example/50', 'https://bbc.example/50', "
            "?, ?, 'en', ?, ?, ?)", [MARKUP_TITLE, now, MARKUP_TEXT, now, now])
        index_articles(con, [50])
        con.execute("COMMIT")
    return path


# --- 1. data is printed as data, never read as Rich markup -----------------------------------


def test_query_table_prints_markup_like_text_as_is(db: Path) -> None:
    out = io.StringIO()
    query.run_query(db, "SELECT title, text AS \"[b]col[/b]\" FROM articles WHERE id = 50", stream=out)
    text = out.getvalue()
    assert MARKUP_TITLE in text
    assert "[/button]" in text and "[bold]subscribe[/bold]" in text
    assert "[b]col[/b]" in text


def test_query_cli_table_does_not_crash_on_closing_tags(db: Path) -> None:
    r = run_cli("query", "SELECT text FROM articles WHERE id = 50", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "[/button]" in r.stdout and "Traceback" not in r.output


def test_search_table_prints_markup_like_text_as_is(db: Path) -> None:
    r = run_cli("search", "election", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert MARKUP_TITLE in r.stdout
