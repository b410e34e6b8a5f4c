"""mediawatch query: formats round-trip, writes are refused, errors are one line; on both
backends (the file, and a lake holding the same archive)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import duckdb
import pytest
from click.testing import CliRunner, Result

from archive import query
from archive.db import writer
from archive.search import index_articles
from archive.target import is_lake
from tests.conftest import BACKENDS, built_backend

NOW = datetime.now(UTC).replace(microsecond=0)

ARTICLES: list[dict[str, Any]] = [
    {"language": None, "published_at": None, **a}
    for a in tomllib.loads(
        (Path(__file__).parent / "fixtures" / "query_articles.toml").read_text()
    )["article"]
]


def html_for(article: dict[str, Any]) -> bytes:
    return (
        f"<html><head><title>{article['title']}</title></head>"
        f"<body><article><h1>{article['title']}</h1><p>{article['text']}</p></article></body></html>"
    ).encode()


def build_archive(path: Path) -> Path:
    """A small real archive: articles in fr/en/de, their pages (gzip HTML), runs, promos, a cluster."""
    with writer(path) as con:
        con.execute("BEGIN")
        ids = []
        for i, a in enumerate(ARTICLES, start=1):
            url = f"https://{a['outlet']}.example/articles/{i}"
            seen = NOW - timedelta(hours=30 - i)
            con.execute(
                "INSERT INTO pages (id, record_id, run_id, outlet, url, final_url, status, content_type, "
                "fetched_at, size_bytes, html_gz, article_id) VALUES (?, ?, 'run1', ?, ?, ?, 200, "
                "'text/html; charset=utf-8', ?, ?, ?, ?)",
                [
                    i,
                    f"rec{i}",
                    a["outlet"],
                    url,
                    url,
                    seen,
                    len(html_for(a)),
                    gzip.compress(html_for(a)),
                    i,
                ],
            )
            con.execute(
                "INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, language, text, "
                "word_count, authors, tags, page_id, first_seen_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ['A. Auteur'], ['politique'], ?, ?, ?)",
                [i, a["outlet"], url, url, a["title"], a["published_at"], a["language"], a["text"],
                 len(a["text"].split()), i, seen, seen],
            )  # fmt: skip
            ids.append(i)
        con.execute(
            "INSERT INTO pages (id, record_id, run_id, outlet, url, status, fetched_at, skip_reason) "
            "VALUES (100, 'rec100', 'run1', 'lemonde', 'https://lemonde.example/x', 404, ?, 'http_404'), "
            "(101, 'rec101', 'run1', 'lemonde', 'https://lemonde.example/y', 200, ?, 'empty_extraction')",
            [NOW - timedelta(hours=1), NOW - timedelta(hours=1)],
        )
        con.execute(
            "INSERT INTO crawl_runs (run_id, outlet, started_at, finished_at, status) VALUES "
            "('run1', 'lemonde', ?, ?, 'ok'), ('run2', 'lemonde', ?, NULL, 'failed')",
            [
                NOW - timedelta(hours=2),
                NOW - timedelta(hours=2) + timedelta(minutes=1),
                NOW - timedelta(hours=1),
            ],
        )
        con.execute(
            "INSERT INTO removed_blocks VALUES (1, 1, 3, 'subscription', 'fr.abonnez_vous', "
            "'Abonnez-vous dès maintenant'), (2, 1, 5, 'subscription', 'fr.abonnez_vous', 'Abonnez-vous')"
        )
        con.execute("INSERT INTO clusters VALUES (1, 1, ?, 2)", [ARTICLES[0]["published_at"]])
        con.execute("UPDATE articles SET cluster_id = 1 WHERE id IN (1, 4)")
        con.execute(
            "INSERT INTO duplicate_links VALUES (4, 1, 'near', 0.82, 'containment', ?)", [NOW]
        )
        index_articles(con, ids)
        con.execute("COMMIT")
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The archive, on each backend (the lake holds it migrated: the same rows and ids)."""
    with built_backend(request, tmp_path_factory.mktemp("q"), build_archive) as db:
        yield db


# --- helpers -------------------------------------------------------------------------------


def cli() -> click.Group:
    """A local group, as crawler/cli.py builds it, with our commands registered."""
    from crawler.cli_archive import register

    @click.group()
    def main() -> None:
        pass

    register(main)
    return main


def run_cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli(), list(args), input=input)


def _reader(db: str) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB on the file; on a lake its reader (no sandbox either)."""
    return query.open_archive(db, fts=False) if is_lake(db) else duckdb.connect(db, read_only=True)


def expected(db: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = _reader(db)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql)
        return [d[0] for d in cur.description or []], cur.fetchall()
    finally:
        con.close()


SQL = "SELECT id, outlet, title, published_at, authors, word_count, paywalled FROM articles ORDER BY id"


# --- formats ---------------------------------------------------------------------------------


def test_csv_round_trips(db: str) -> None:
    cols, rows = expected(db, SQL)
    out = io.StringIO()
    assert query.run_query(db, SQL, fmt="csv", stream=out) == len(rows) == 6
    got = list(csv.reader(io.StringIO(out.getvalue())))
    assert got[0] == cols
    assert got[1:] == [[query._cell(v) for v in row] for row in rows]
    assert got[1][4] == '["A. Auteur"]' and got[6][3] == ""  # a list as JSON, NULL as empty


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_round_trips(db: str, fmt: str, tmp_path: Path) -> None:
    cols, rows = expected(db, SQL)
    out = tmp_path / f"out.{fmt}"
    query.run_query(db, SQL, fmt=fmt, output=out)
    text = out.read_text(encoding="utf-8")
    objs = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert objs == [{c: query.jsonable(v) for c, v in zip(cols, row, strict=True)} for row in rows]
    assert objs[0]["published_at"] == "2026-11-28T07:30:00+00:00"
    assert objs[0]["title"].startswith("Élections")


def test_json_of_no_rows_is_an_empty_list(db: str) -> None:
    out = io.StringIO()
    query.run_query(db, "SELECT * FROM articles WHERE false", fmt="json", stream=out)
    assert json.loads(out.getvalue()) == []


def test_parquet_read_back_equals_the_query(db: str, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    sql = (
        "SELECT a.*, p.html_gz FROM articles a JOIN pages p ON p.id = a.page_id WHERE a.outlet = $o"
    )
    n = query.run_query(db, sql, {"o": "lemonde"}, fmt="parquet", output=out)
    assert n == 2
    con = _reader(db)
    try:
        direct = con.execute(sql + " ORDER BY id", {"o": "lemonde"}).fetchall()
        back = con.execute(f"SELECT * FROM read_parquet('{out}') ORDER BY id").fetchall()
        types = con.execute(f"SELECT * FROM read_parquet('{out}')").description
    finally:
        con.close()
    assert back == direct
    assert {d[0]: str(d[1]) for d in types or []}["published_at"] == "TIMESTAMP WITH TIME ZONE"


def test_parquet_needs_an_output(db: str) -> None:
    with pytest.raises(query.QueryError, match="--output"):
        query.run_query(db, "SELECT 1", fmt="parquet")


def test_table_shows_rows(db: str) -> None:
    out = io.StringIO()
    query.run_query(
        db, "SELECT outlet, count(*) AS n FROM articles GROUP BY 1 ORDER BY 1", stream=out
    )
    text = out.getvalue()
    assert "outlet" in text and "liberation" in text and "4 rows" in text


# --- read-only, whatever the statement ---------------------------------------------------


WRITES = [
    "DELETE FROM articles",
    "UPDATE articles SET title = 'x'",
    "INSERT INTO clusters VALUES (9, 1, NULL, 1)",
    "DROP TABLE articles",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "COPY articles TO '{out}'",
    "COPY (SELECT * FROM articles) TO '{out}' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY articles TO '{out}'",
    "explain analyze  copy (select 1) to '{out}'",
    "EXPORT DATABASE '{out}'",
    "ATTACH '{out}' AS other",
    "INSTALL httpfs",
    "LOAD fts",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "PRAGMA profile_output = '{out}'",
    "CALL checkpoint()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "USE memory",
    "SELECT 1; COPY articles TO '{out}'",
    "SELECT 1; DELETE FROM articles",
    "/* sneaky */ EXPLAIN COPY articles TO '{out}'",
    "SELECT * FROM query('COPY articles TO ''{out}''')",
    "SELECT * FROM read_csv('/etc/passwd')",
]


STATE = "SELECT (SELECT count(*) FROM articles), (SELECT max(title) FROM articles), (SELECT count(*) FROM clusters)"


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused(db: str, tmp_path: Path, sql: str) -> None:
    out = tmp_path / "leak.csv"
    with pytest.raises(query.QueryError) as err:
        query.run_query(db, sql.format(out=out), fmt="csv", stream=io.StringIO())
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_archive_unchanged_after_the_refusals(db: str) -> None:
    assert expected(db, STATE)[1] == [(6, "Élections municipales : la gauche se rassemble", 1)]


def test_refusal_says_why(db: str, tmp_path: Path) -> None:
    with pytest.raises(
        query.QueryError, match=r"refused: COPY is not allowed; mediawatch query is read-only"
    ):
        query.run_query(db, f"EXPLAIN ANALYZE COPY articles TO '{tmp_path / 'x'}'")
    with pytest.raises(query.QueryError, match=r"INSTALL \(a LOAD statement\)"):
        query.run_query(db, "INSTALL httpfs")


def test_parquet_output_cannot_reach_other_files(db: str, tmp_path: Path) -> None:
    """The one file the sandbox lets DuckDB touch is --output."""
    with pytest.raises(query.QueryError, match="Permission Error"):
        query.run_query(db, "SELECT * FROM read_csv('/etc/hostname')", fmt="parquet",
                        output=tmp_path / "o.parquet")  # fmt: skip


@pytest.mark.parametrize("sql", ["DESCRIBE articles", "SHOW TABLES", "SUMMARIZE articles",
                                 "EXPLAIN SELECT * FROM articles", "PRAGMA version",
                                 "FROM articles SELECT id LIMIT 1 -- trailing comment",
                                 "WITH x AS (SELECT 1 AS a) SELECT * FROM x", "VALUES (1), (2)"])  # fmt: skip
def test_reads_are_allowed(db: str, sql: str) -> None:
    assert query.run_query(db, sql, fmt="jsonl", stream=io.StringIO()) >= 1


def test_open_archive_is_read_only_with_views(db: str) -> None:
    con = query.open_archive(db)
    try:
        assert con.execute("SELECT count(*) FROM article_latest").fetchone() == (6,)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM pages")  # a table on both backends (articles is a lake view)
    finally:
        con.close()


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "pattern"),
    [
        ("SELECT nope FROM articles", r'^Binder Error: .*"nope".* \(at LINE 1, column 8: nope FROM articles\)$'),
        ("SELECT id,\n  title,\n  bad_col\nFROM articles", r"\(at LINE 3, column 3: bad_col\)$"),
        ("SELECT * FROM artcles", r"^Catalog Error: .*artcles.*Did you mean \"articles\"\?.*\(at LINE 1, column 15"),
        ("SELECT 1 +", r"^Parser Error: syntax error at end of input$"),
        ("SELEC 1", r'^Parser Error: syntax error at or near "SELEC" \(at LINE 1, column 1: SELEC 1\)$'),
    ],
)  # fmt: skip
def test_sql_errors_are_one_line_with_position(db: str, sql: str, pattern: str) -> None:
    with pytest.raises(query.QueryError) as err:
        query.run_query(db, sql, stream=io.StringIO())
    msg = str(err.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


def test_long_line_position_is_in_the_whole_line(db: str) -> None:
    sql = "SELECT " + ", ".join(f"id AS c{i}" for i in range(30)) + ", missing_column FROM articles"
    with pytest.raises(query.QueryError) as err:
        query.run_query(db, sql, stream=io.StringIO())
    col = sql.index("missing_column") + 1
    assert f"column {col}: missing_column" in str(err.value)


def test_params(db: str) -> None:
    out = io.StringIO()
    n = query.run_query(db, "SELECT id FROM articles WHERE outlet = $o AND published_at >= $since LIMIT $n::INT",
                        query.parse_params(["o=lemonde", "since=2026-11-29", "n=5"]), fmt="csv", stream=out)  # fmt: skip
    assert n == 1 and out.getvalue().split() == ["id", "2"]
    with pytest.raises(query.QueryError, match=r"missing parameter \$o \(pass -p o=VALUE\)"):
        query.run_query(db, "SELECT id FROM articles WHERE outlet = $o")
    with pytest.raises(query.QueryError, match="not used by the query: x"):
        query.run_query(db, "SELECT 1", {"x": "1"})
    with pytest.raises(query.QueryError, match="NAME=VALUE"):
        query.parse_params(["novalue"])
    assert query.parse_params(["q=a=b"]) == {"q": "a=b"}


def test_missing_archive_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(query.QueryError, match="no archive here"):
        query.run_query(tmp_path / "none.duckdb", "SELECT 1")


# --- views ---------------------------------------------------------------------------------


def test_views(db: str) -> None:
    rows = dict(
        expected(db, "SELECT outlet, sum(articles) FROM articles_per_outlet_day GROUP BY 1")[1]
    )
    assert rows == {"lemonde": 2, "liberation": 1, "bbc": 2, "spiegel": 1}
    undated = expected(
        db, "SELECT undated FROM articles_per_outlet_day WHERE outlet = 'bbc' AND undated > 0"
    )[1]
    assert undated == [(1,)]
    syn = expected(
        db, "SELECT first_outlet, outlets, articles, first_published_at FROM syndication"
    )[1]
    assert syn == [("lemonde", ["bbc", "lemonde"], 2, ARTICLES[0]["published_at"])]
    copies = expected(
        db,
        "SELECT outlet, is_first, delay, level, score FROM syndication_copies ORDER BY article_id",
    )[1]
    assert copies == [("lemonde", True, timedelta(0), None, None),
                      ("bbc", False, timedelta(hours=34, minutes=30), "near", 0.82)]  # fmt: skip
    promos = expected(
        db, "SELECT outlet, kind, rule, blocks, articles, article_share FROM removed_promotions"
    )[1]
    assert promos == [("lemonde", "subscription", "fr.abonnez_vous", 2, 2, 1.0)]
    act = expected(db, "SELECT last_run_status, runs_24h, failed_runs_24h, pages_24h, error_rate_24h, "
                       "empty_extraction_rate_24h, articles_total FROM outlet_activity WHERE outlet = 'lemonde'")[1]  # fmt: skip
    assert act == [("failed", 2, 1, 2, 0.5, 1.0, 2)]
    latest = expected(
        db, "SELECT count(*), min(version), min(earlier_versions) FROM article_latest"
    )[1]
    assert latest == [(6, 1, 0)]
    hist = expected(db, "SELECT count(*), bool_and(is_latest) FROM article_history")[1]
    assert hist == [(6, True)]


# --- command line ---------------------------------------------------------------------------


def test_cli_query_formats_and_stdin(db: str, tmp_path: Path) -> None:
    r = run_cli("query", "SELECT count(*) AS n FROM articles", "--format", "json", "--db", db)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"n": 6}]
    r = run_cli("query", "-", "-p", "o=bbc", "--format", "csv", "--db", db,
                input="SELECT count(*) AS n FROM articles WHERE outlet = $o")  # fmt: skip
    assert r.exit_code == 0 and r.stdout.split() == ["n", "2"]
    f = tmp_path / "q.sql"
    f.write_text("SELECT outlet FROM articles WHERE id = 3", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    r = run_cli("query", "--file", str(f), "--format", "jsonl", "--output", str(out), "--db", db)
    assert r.exit_code == 0 and json.loads(out.read_text()) == {"outlet": "liberation"}


def test_cli_errors_are_one_line_on_stderr(db: str) -> None:
    for args in (["query", "DELETE FROM articles"], ["query", "SELECT nope"], ["query"],
                 ["query", "SELECT $x"], ["query", "SELECT 1", "--format", "parquet"]):  # fmt: skip
        r = run_cli(*args, "--db", db)
        assert r.exit_code == 1, (args, r.output)
        assert r.stdout == ""
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_cli_db_from_env(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAWATCH_DB", str(db))
    r = run_cli("query", "SELECT count(*) AS n FROM articles", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.split() == ["n", "6"]


def test_query_waits_for_the_writer(tmp_path: Path) -> None:
    """A reader opened while another process writes retries on the lock, then answers. (The
    file's lock: a lake has many writers and never holds its readers.)"""
    db = build_archive(tmp_path / "archive.duckdb")
    code = (
        "import time; from archive.db import writer\n"
        f"with writer({str(db)!r}) as con:\n"
        "    print('locked', flush=True); time.sleep(1.0)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        out = io.StringIO()
        assert query.run_query(db, "SELECT count(*) AS n FROM articles", fmt="csv", stream=out) == 1
        assert time.monotonic() - t0 > 0.3  # it did wait for the lock
        assert out.getvalue().split() == ["n", "6"]
    finally:
        proc.wait(timeout=10)


def test_installed_command(db: str) -> None:
    """The real `mediawatch` entry point, as users run it."""
    exe = Path(sys.executable).with_name("mediawatch")
    assert exe.exists(), "make test installs the mediawatch console script"
    env = {**os.environ, "MEDIAWATCH_DB": str(db)}
    r = subprocess.run([str(exe), "query", "SELECT count(*) AS n FROM articles", "--format", "csv"],
                       capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", "6"]
