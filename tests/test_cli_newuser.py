"""What a new user hits in the first hour (issue 18): data printed as data, typos refused,
outputs that cannot overwrite the archive, the README's notebook lines."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from archive import query
from archive.db import writer
from archive.search import index_articles
from tests.conftest import run_cli as subprocess_cli
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
            "?, ?, 'en', ?, ?, ?)",
            [MARKUP_TITLE, now, MARKUP_TEXT, now, now],
        )
        index_articles(con, [50])
        con.execute("COMMIT")
    return path


# --- 1. data is printed as data, never read as Rich markup -----------------------------------


def test_query_table_prints_markup_like_text_as_is(db: Path) -> None:
    out = io.StringIO()
    query.run_query(
        db, 'SELECT title, text AS "[b]col[/b]" FROM articles WHERE id = 50', stream=out
    )
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


# --- issue 13 item 3: no output can land on the archive ----------------------------------------


def _archive_files(db: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in db.parent.iterdir()
        if p.is_file() and p.name.startswith(db.name)
    }


def test_query_output_never_writes_onto_the_archive_or_its_files(db: Path, tmp_path: Path) -> None:
    (db.parent / (db.name + ".wal")).write_bytes(b"")  # as a live archive has
    (db.parent / (db.name + ".daemon.lock")).write_text("123\n")
    spool = db.parent / "archive.spool"
    spool.mkdir()
    (spool / "seg.lock").write_text("")
    link = tmp_path / "innocent.csv"
    link.symlink_to(db)
    before = _archive_files(db)
    targets = [
        db,
        db.parent / (db.name + ".wal"),
        db.parent / (db.name + ".daemon.lock"),
        spool / "seg.lock",
        spool / "new.csv",
        link,
        db.parent / "." / db.name,
    ]
    for target in targets:
        for extra in ([], ["--overwrite"]):
            for fmt in ("csv", "parquet"):
                r = run_cli(
                    "query",
                    "SELECT 1 AS x",
                    "--format",
                    fmt,
                    "--output",
                    str(target),
                    *extra,
                    "--db",
                    str(db),
                )
                assert r.exit_code == 1, (target, r.output)
                assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert _archive_files(db) == before
    assert (spool / "seg.lock").read_text() == "" and not (spool / "new.csv").exists()
    r = run_cli("query", "SELECT count(*) AS n FROM articles", "--format", "csv", "--db", str(db))
    assert r.exit_code == 0 and r.stdout.splitlines() == ["n", "7"]


def test_query_output_keeps_an_existing_file_unless_overwrite(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.write_text("my notes\n")
    r = run_cli("query", "SELECT 1 AS x", "--format", "csv", "--output", str(out), "--db", str(db))
    assert r.exit_code == 1 and "--overwrite" in r.stderr
    assert out.read_text() == "my notes\n"
    r = run_cli(
        "query",
        "SELECT 1 AS x",
        "--format",
        "csv",
        "--output",
        str(out),
        "--overwrite",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines() == ["x", "1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_query_parquet_output_is_replaced_only_with_overwrite(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    assert (
        run_cli(
            "query", "SELECT 1 AS x", "--format", "parquet", "-o", str(out), "--db", str(db)
        ).exit_code
        == 0
    )
    r = run_cli("query", "SELECT 2 AS x", "--format", "parquet", "-o", str(out), "--db", str(db))
    assert r.exit_code == 1
    r = run_cli(
        "query",
        "SELECT 2 AS x",
        "--format",
        "parquet",
        "-o",
        str(out),
        "--overwrite",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    assert duckdb.sql(f"SELECT x FROM '{out}'").fetchall() == [(2,)]


@pytest.mark.parametrize(
    "fmt,name", [("csv", "a.csv"), ("jsonl", "a.jsonl"), ("warc", "a.warc.gz"), ("parquet", "pq")]
)
def test_export_overwrite_works_for_every_format(
    db: Path, tmp_path: Path, fmt: str, name: str
) -> None:
    out = tmp_path / name
    first = run_cli("export", "--format", fmt, "--output", str(out), "--db", str(db))
    assert first.exit_code == 0, first.output
    again = run_cli("export", "--format", fmt, "--output", str(out), "--db", str(db))
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    r = run_cli(
        "export",
        "--format",
        fmt,
        "--output",
        str(out),
        "--overwrite",
        "--outlet",
        "bbc",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    # bbc only (3 articles, 2 with a stored page): what was there before is replaced, not added to
    assert r.stderr.split()[0] == ("2" if fmt == "warc" else "3")
    if fmt == "parquet":
        assert sorted(p.name for p in out.iterdir()) == ["outlet=bbc"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_never_replaces_what_is_not_a_regular_file(db: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    r = run_cli("export", "--format", "csv", "--output", str(fifo), "--overwrite", "--db", str(db))
    assert r.exit_code == 1 and "not a regular file" in r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    r = run_cli("export", "--format", "csv", "--output", str(db), "--overwrite", "--db", str(db))
    assert r.exit_code == 1 and "archive" in r.stderr


# --- 11. typos are refused with one line, naming the close match --------------------------------


def test_search_refuses_an_unknown_outlet_naming_the_close_one(db: Path) -> None:
    r = run_cli("search", "election", "--outlet", "lemond", "--db", str(db))
    assert r.exit_code == 1
    assert (
        r.stderr.startswith("error: --outlet: no outlet 'lemond'")
        and "did you mean 'lemonde'?" in r.stderr
    )
    assert r.stderr.count("\n") == 1 and r.stdout == ""


def test_search_refuses_a_language_name_and_names_the_code(db: Path) -> None:
    r = run_cli("search", "election", "--lang", "french", "--db", str(db))
    assert r.exit_code == 1 and "did you mean 'fr'?" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("search", "election", "--lang", "xx", "--db", str(db))
    assert (
        r.exit_code == 1 and "no article in language 'xx'" in r.stderr and "de, en, fr" in r.stderr
    )
    assert run_cli("search", "election", "--lang", "en", "--db", str(db)).exit_code == 0


def test_export_of_an_unknown_outlet_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    r = run_cli(
        "export", "--format", "jsonl", "--output", str(out), "--outlet", "nosuch", "--db", str(db)
    )
    assert r.exit_code == 1 and r.stderr.startswith("error: --outlet: no outlet 'nosuch'")
    assert not out.exists()
    assert "did you mean" not in r.stderr  # nothing close: no guess


# --- 7. the README's notebook lines work in a plain Python with duckdb -------------------------


def _readme_notebook_snippet() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### From Python (notebooks)", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_notebook_snippet_runs_in_a_plain_python(db: Path, tmp_path: Path) -> None:
    # A Python that has duckdb and nothing else: no site-packages, so no mediawatch, no pandas.
    only = tmp_path / "only-duckdb"
    only.mkdir()
    site = Path(duckdb.__file__).resolve().parents[1]
    for name in (
        "duckdb",
        "_duckdb-stubs",
        *(p.name for p in site.glob("_duckdb*.so")),
        *(p.name for p in site.glob("duckdb-*.dist-info")),
    ):
        if (site / name).exists():
            (only / name).symlink_to(site / name)
    work = tmp_path / "notebook"
    (work / "data").mkdir(parents=True)
    (work / "data" / "archive.duckdb").write_bytes(db.read_bytes())
    env = {"PYTHONPATH": str(only), "PATH": os.environ.get("PATH", "")}
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import archive"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0  # mediawatch is not importable there
    r = subprocess.run(
        [sys.executable, "-S", "-c", _readme_notebook_snippet()],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "('bbc', 3)" in r.stdout and "day" in r.stdout


# --- 12. exports: JSON list cells, ISO 8601 timestamps, the page's canonical URL ----------------


def test_csv_export_lists_as_json_and_iso_timestamps(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    assert (
        run_cli("export", "--format", "csv", "--output", str(out), "--db", str(db)).exit_code == 0
    )
    rows = {r["id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert json.loads(rows["1"]["authors"]) == ["A. Auteur"] and json.loads(rows["1"]["tags"]) == [
        "politique"
    ]
    assert rows["1"]["published_at"] == "2026-11-28T07:30:00+00:00"
    # The same cell as `mediawatch query --format csv` and `--format json` give.
    q = run_cli(
        "query",
        "SELECT published_at, first_seen_at, authors FROM articles WHERE id = 1",
        "--format",
        "csv",
        "--db",
        str(db),
    )
    cells = next(csv.DictReader(io.StringIO(q.stdout)))
    assert cells["published_at"] == rows["1"]["published_at"]
    assert cells["first_seen_at"] == rows["1"]["first_seen_at"]
    assert cells["authors"] == rows["1"]["authors"]
    assert datetime.fromisoformat(rows["1"]["first_seen_at"]).tzinfo is not None


def test_jsonl_export_iso_timestamps(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    assert (
        run_cli("export", "--format", "jsonl", "--output", str(out), "--db", str(db)).exit_code == 0
    )
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["published_at"] == "2026-11-28T07:30:00+00:00" and first["authors"] == [
        "A. Auteur"
    ]
    q = json.loads(
        run_cli(
            "query",
            "SELECT first_seen_at FROM articles WHERE id = 1",
            "--format",
            "json",
            "--db",
            str(db),
        ).stdout
    )
    assert q[0]["first_seen_at"] == first["first_seen_at"]


def test_export_canonical_url_is_the_pages_and_the_dedup_key_its_own_column(tmp_path: Path) -> None:
    from archive.ingest import ingest_records
    from tests.test_ingest import fixture, page_record

    stated = "http://news.example/2024/05/17/elections-municipales?utm_source=canonical"
    html = fixture("elections.html").replace(
        'href="http://news.example/2024/05/17/elections-municipales"', f'href="{stated}"'
    )
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        ingest_records(
            con, [page_record("http://news.example/2024/05/17/elections-municipales?x=1", html)]
        )
    for fmt, name in (("csv", "a.csv"), ("jsonl", "a.jsonl"), ("parquet", "pq")):
        out = tmp_path / name
        assert (
            run_cli("export", "--format", fmt, "--output", str(out), "--db", str(db)).exit_code == 0
        )
        if fmt == "csv":
            row = next(csv.DictReader(out.open(encoding="utf-8")))
        elif fmt == "jsonl":
            row = json.loads(out.read_text(encoding="utf-8"))
        else:
            con = duckdb.connect()
            cur = con.execute(
                f"SELECT canonical_url, dedup_key FROM read_parquet('{out}/**/*.parquet')"
            )
            row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
        assert row["canonical_url"] == stated, fmt
        assert row["dedup_key"] == "https://news.example/2024/05/17/elections-municipales", fmt


# --- 10. status: outlets gone from the config are not "ok"; it fits 80 columns ----------------


def _with_daemon_state(db: Path) -> None:
    now = datetime.now(UTC)
    with writer(db) as con:
        for outlet in ("lemonde", "bbc", "liberation", "spiegel"):
            con.execute(
                "INSERT INTO outlet_state (outlet, next_run_at, interval_seconds, delay_seconds, healthy, "
                "last_run_at, updated_at) VALUES (?, ?, 1800, 1800, true, ?, ?)",
                [outlet, now + timedelta(minutes=30), now, now],
            )


def test_status_does_not_show_outlets_removed_from_the_config_as_ok(db: Path) -> None:
    _with_daemon_state(db)
    # What the daemon runs now: lemonde and bbc only (its config snapshot beside the archive).
    feeds = "\n".join(
        f'[[outlet]]\nname = "{n}"\nfeeds = ["https://{n}.example/feed"]\n'
        for n in ("lemonde", "bbc")
    )
    (db.parent / (db.name + ".daemon-config.toml")).write_text(feeds)
    r = subprocess_cli("status", "--db", str(db))
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    listed = {
        cells[0]
        for cells in rows
        if cells and cells[0] in ("lemonde", "bbc", "liberation", "spiegel")
    }
    assert listed == {"lemonde", "bbc"}, r.stdout
    assert any(
        "not in the config any more" in line and "liberation, spiegel" in line
        for line in r.stdout.splitlines()
    ), r.stdout


def test_status_fits_80_columns(db: Path) -> None:
    _with_daemon_state(db)
    r = subprocess_cli("status", "--db", str(db), env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("outlet"))
    assert header.split() == [
        "outlet",
        "health",
        "last",
        "run",
        "new/err",
        "next",
        "run",
        "24h",
        "failed",
    ]
    assert "[red]" not in r.stdout


def test_reprocess_refuses_an_unknown_outlet(db: Path) -> None:
    r = subprocess_cli("reprocess", "--outlet", "lemond", "--dry-run", "--db", str(db))
    assert r.returncode == 1 and r.stderr.startswith("error: --outlet: no outlet 'lemond'")
    assert "did you mean 'lemonde'?" in r.stderr and r.stderr.count("\n") == 1
    assert (
        subprocess_cli("reprocess", "--outlet", "lemonde", "--dry-run", "--db", str(db)).returncode
        == 0
    )
