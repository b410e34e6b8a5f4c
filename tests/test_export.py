"""mediawatch export: Parquet partitions, CSV, JSONL and WARC read back equal the archive, on
both backends (the lake holds the same archive, migrated)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.export import Selection, export, parse_when
from archive.query import QueryError
from tests.conftest import BACKENDS, built_backend, rows
from tests.test_query import ARTICLES, build_archive, html_for, run_cli


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with built_backend(request, tmp_path_factory.mktemp("e"), build_archive) as db:
        yield db


def test_parquet_partitioned_by_outlet_and_day(db: str, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    assert export(db, out, "parquet") == 6
    parts = sorted(str(p.relative_to(out).parent) for p in out.rglob("*.parquet"))
    assert "outlet=lemonde/day=2026-11-28" in parts and "outlet=spiegel/day=2026-11-30" in parts
    # The undated article lands on the UTC day it was first seen.
    undated_day = rows(
        db, "SELECT CAST(timezone('UTC', first_seen_at) AS DATE) FROM articles WHERE id = 6"
    )[0][0]
    assert f"outlet=bbc/day={undated_day}" in parts
    back = rows(db, f"SELECT id, outlet, title, text, published_at, authors, day FROM "
                    f"read_parquet('{out}/**/*.parquet', hive_partitioning = true) ORDER BY id")  # fmt: skip
    direct = rows(db, "SELECT id, outlet, title, text, published_at, authors, "
                      "CAST(timezone('UTC', coalesce(published_at, first_seen_at)) AS DATE) FROM articles ORDER BY id")  # fmt: skip
    assert back == direct


def test_parquet_refuses_a_non_empty_directory(db: str, tmp_path: Path) -> None:
    out = tmp_path / "pq"
    export(db, out, "parquet")
    with pytest.raises(QueryError, match="--overwrite"):
        export(db, out, "parquet")
    assert export(db, out, "parquet", Selection(outlets=["bbc"]), overwrite=True) == 2
    assert sorted(p.name for p in out.iterdir()) == ["outlet=bbc"]


def test_time_range_and_outlets(db: str, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    sel = Selection(since=parse_when("2026-11-29"), until=parse_when("2026-11-29", end=True))
    assert export(db, out, "jsonl", sel) == 3
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [a["id"] for a in got] == [2, 3, 4]
    assert got[0]["title"] == ARTICLES[1]["title"] and got[0]["authors"] == ["A. Auteur"]
    out2 = tmp_path / "b.jsonl"
    assert (
        export(
            db,
            out2,
            "jsonl",
            Selection(outlets=["lemonde", "spiegel"], since=parse_when("2026-11-29")),
        )
        == 2
    )
    # first_seen_at instead of published_at: the undated article is included.
    out3 = tmp_path / "c.jsonl"
    assert (
        export(
            db,
            out3,
            "jsonl",
            Selection(since=datetime(2000, 1, 1, tzinfo=UTC), date_field="first_seen"),
        )
        == 6
    )


def test_csv(db: str, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    assert export(db, out, "csv", Selection(outlets=["liberation"])) == 1
    with open(out, newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert row["title"] == ARTICLES[2]["title"] and row["text"] == ARTICLES[2]["text"]
    with pytest.raises(QueryError, match="exists"):
        export(db, out, "csv")


def test_warc_reads_back(db: str, tmp_path: Path) -> None:
    out = tmp_path / "pages.warc.gz"
    assert export(db, out, "warc", Selection(outlets=["lemonde", "bbc"])) == 4
    with open(out, "rb") as f:
        records = list(_records(f))
    assert records[0][0] == "warcinfo"
    responses = records[1:]
    assert [r[1] for r in responses] == [f"https://{a['outlet']}.example/articles/{i}"
                                         for i, a in enumerate(ARTICLES, start=1) if a["outlet"] in ("lemonde", "bbc")]  # fmt: skip
    kind, _, date, status, body = responses[0]
    assert kind == "response" and status == "200"
    assert (
        body
        == html_for(ARTICLES[0])
        == gzip.decompress(rows(db, "SELECT html_gz FROM pages WHERE id = 1")[0][0])
    )
    fetched = rows(db, "SELECT fetched_at FROM pages WHERE id = 1")[0][0]
    assert date == fetched.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _records(f):  # type: ignore[no-untyped-def]
    for rec in ArchiveIterator(f):
        status = rec.http_headers.get_statuscode() if rec.http_headers else None
        yield (rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"),
               rec.rec_headers.get_header("WARC-Date"), status, rec.content_stream().read())  # fmt: skip


def test_uncompressed_warc(db: str, tmp_path: Path) -> None:
    out = tmp_path / "pages.warc"
    assert export(db, out, "warc", Selection(outlets=["spiegel"])) == 1
    assert out.read_bytes().startswith(b"WARC/1.")


def test_cli_export(db: str, tmp_path: Path) -> None:
    out = tmp_path / "cli.warc.gz"
    r = run_cli(
        "export", "--format", "warc", "--output", str(out), "--outlet", "spiegel", "--db", db
    )
    assert r.exit_code == 0, r.output
    assert "1 pages written" in r.stderr
    r = run_cli("export", "--format", "parquet", "--output", str(tmp_path / "p"), "--since", "2026-11-30",
                "--db", db)  # fmt: skip
    assert r.exit_code == 0 and "1 articles written" in r.stderr
    r = run_cli(
        "export",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "x.csv"),
        "--since",
        "soon",
        "--db",
        db,
    )
    assert r.exit_code == 1 and r.stderr.startswith("error: bad date") and r.stderr.count("\n") == 1
