"""Readers on the lake: `mediawatch query --db URL` and `open_archive(url)` answer as on the
file they were migrated from, with the same view names, and cannot write the lake."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.lake.migrate import migrate_archive
from archive.query import QueryError, open_archive, run_query
from archive.target import LakeTarget, parse_target
from tests import pg
from tests.conftest import REPO, run_cli
from tests.lake.archives import build_archive

VIEWS = {  # view -> an ORDER BY that makes its rows comparable
    "articles": "id", "article_latest": "article_id", "article_history": "article_id, version",
    "articles_per_outlet_day": "outlet, day", "syndication": "cluster_id",
    "syndication_copies": "cluster_id, article_id", "removed_promotions": "outlet, kind, rule",
    "outlet_activity": "outlet", "outlet_status": "outlet", "crawl_runs": "run_id, outlet",
    "clusters": "cluster_id", "article_versions": "article_id, version",
}  # fmt: skip
NOW_COLUMNS = ("days_since_new_article",)  # moves with the clock between two reads


@pytest.fixture(scope="module")
def migrated(
    pg_server: pg.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """One archive and its lake for the module: the readers only read them."""
    tmp = tmp_path_factory.mktemp("readers")
    db = build_archive(tmp / "archive.duckdb")
    name = pg_server.create_database()
    try:
        url = pg_server.url(name, tmp / "lake")
        target = parse_target(url)
        assert isinstance(target, LakeTarget)
        assert migrate_archive(db, target).ok
        yield db, url
    finally:
        pg_server.drop_database(name)


def _read(db: str, sql: str) -> list[dict[str, object]]:
    con = open_archive(db, fts=False, timezone="UTC")
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description or []]
        return [
            {c: v for c, v in zip(cols, row, strict=True) if c not in NOW_COLUMNS}
            for row in cur.fetchall()
        ]
    finally:
        con.close()


def test_every_view_shows_on_the_lake_what_it_shows_on_the_file(migrated: tuple[Path, str]) -> None:
    db, url = migrated
    for view, order in VIEWS.items():
        on_file = _read(str(db), f"SELECT * FROM {view} ORDER BY {order}")
        assert on_file or view in ("removed_promotions",), view
        assert _read(url, f"SELECT * FROM {view} ORDER BY {order}") == on_file, view


def test_mediawatch_query_on_the_lake_by_option_and_by_environment(
    migrated: tuple[Path, str],
) -> None:
    db, url = migrated
    sql = (
        "SELECT outlet, count(*) AS n, sum(word_count) AS words FROM articles GROUP BY 1 ORDER BY 1"
    )
    on_file = run_cli("query", "--db", str(db), sql, "--format", "json")
    by_option = run_cli("query", "--db", url, sql, "--format", "json")
    by_env = run_cli("query", sql, "--format", "json", env={"MEDIAWATCH_DB": url})
    assert on_file.returncode == by_option.returncode == by_env.returncode == 0, by_option.stderr
    assert json.loads(by_option.stdout) == json.loads(on_file.stdout) == json.loads(by_env.stdout)
    assert len(json.loads(on_file.stdout)) == 2


def test_the_lake_cannot_be_written_through_a_reader(
    migrated: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = migrated
    refused = run_cli("query", "--db", url, "DELETE FROM pages")
    assert refused.returncode == 1 and "refused: DELETE" in refused.stderr
    sneaky = "SELECT * FROM postgres_execute('__ducklake_metadata_lake', 'DROP TABLE public.ducklake_snapshot')"
    with pytest.raises(QueryError, match="read-only transaction"):
        run_query(url, sneaky, stream=sys.stdout)
    assert _read(url, "SELECT count(*) AS n FROM pages")[0]["n"] > 0, "the lake is whole"
    with pytest.raises(QueryError, match="inside the lake's data directory"):
        run_query(url, "SELECT 1", fmt="csv", output=db.parent / "lake" / "out.csv")
    out = tmp_path / "titles.parquet"
    assert (
        run_query(url, "SELECT title FROM articles", fmt="parquet", output=out) > 0 and out.exists()
    )


def test_a_bad_lake_url_is_one_line(tmp_path: Path) -> None:
    bad = run_cli("query", "--db", "postgresql://postgres@127.0.0.1:5432/x", "SELECT 1")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "?data=" in bad.stderr


def test_the_readme_notebook_lines_work_with_plain_duckdb(
    migrated: tuple[Path, str], pg_server: pg.Server
) -> None:
    dbname = migrated[1].split("/")[3].split("?")[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("A notebook needs two lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    body = (
        code.group(1)
        .replace("port=5432", f"port={pg_server.port}")
        .replace("dbname=news", f"dbname={dbname}")
    )
    offline = (
        "from archive.lake.extensions import extension_path\n"
        "def _load(con):\n"
        "    for name in ('postgres_scanner', 'ducklake'):\n"
        "        con.execute(f\"LOAD '{extension_path(name)}'\")\n"
    )
    body = body.replace("con = duckdb.connect()\n", "con = duckdb.connect()\n_load(con)\n")
    done = subprocess.run(
        [sys.executable, "-c", offline + body],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(ast.literal_eval(done.stdout)) == [("autre", 1), ("courrier", 5)]


def test_export_on_the_lake_writes_what_it_writes_from_the_file(
    migrated: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = migrated
    outputs = []
    for source, name in ((str(db), "file.jsonl"), (url, "lake.jsonl")):
        done = run_cli(
            "export", "--db", source, "--format", "jsonl", "--output", str(tmp_path / name)
        )
        assert done.returncode == 0, done.stderr
        outputs.append(
            sorted(json.loads(line)["url"] for line in (tmp_path / name).read_text().splitlines())
        )
    assert outputs[0] == outputs[1] and len(outputs[0]) > 3


def test_the_file_backends_search_tables_are_said_not_to_be_on_a_lake(
    migrated: tuple[Path, str],
) -> None:
    _db, url = migrated
    with pytest.raises(QueryError, match="search tables of the file backend are not on a lake"):
        run_query(url, "SELECT * FROM search_stats WHERE docs > 0", stream=sys.stdout)
