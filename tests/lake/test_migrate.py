"""`mediawatch migrate`: an archive made by the real ingest moves into a lake on a real
PostgreSQL, a second run adds nothing, and a run killed -9 mid-way resumes to the same lake."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import psycopg

from archive.lake.connect import connect_lake_read
from archive.target import LakeTarget, parse_target
from tests import pg
from tests.conftest import MEDIAWATCH, rows, run_cli
from tests.lake.archives import build_archive
from tests.lake.test_schema import SNAPSHOTS

ARTICLE = (
    "id, outlet, url, canonical_url, title, text, word_count, published_at, language, version, "
    "cluster_id, content_hash, page_id, first_seen_at, last_seen_at, authors, tags"
)


def lake_rows(target: LakeTarget, sql: str) -> list[tuple[object, ...]]:
    con = connect_lake_read(target)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def counts_printed(stdout: str) -> dict[str, tuple[int, int]]:
    out = {}
    for line in stdout.splitlines()[1:]:
        name, src, lake = line.rsplit(None, 2)
        out[name.strip()] = (int(src), int(lake))
    return out


def test_an_archive_moves_whole_and_a_second_run_adds_nothing(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    db = build_archive(tmp_path / "archive.duckdb")
    url = pg_server.url(pg_database, tmp_path / "lake")
    first = run_cli("migrate", "--from", str(db), "--to", url)
    assert first.returncode == 0, first.stderr
    counts = counts_printed(first.stdout)
    assert (
        counts["articles"][0] > 3
        and counts["article_versions"][0] >= 1
        and counts["removed_blocks"][0] >= 1
    )
    assert all(src == lake for src, lake in counts.values()), first.stdout
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    order = " ORDER BY id"
    assert lake_rows(target, f"SELECT {ARTICLE} FROM articles{order}") == rows(
        db, f"SELECT {ARTICLE} FROM articles{order}"
    )
    history = (
        "SELECT article_id, version, title, text, is_latest FROM article_history ORDER BY 1, 2"
    )
    assert lake_rows(target, history) == rows(db, history)
    promos = "SELECT outlet, kind, rule, blocks, articles FROM removed_promotions ORDER BY ALL"
    assert lake_rows(target, promos) == rows(db, promos)
    pages = "SELECT id, record_id, url, status, skip_reason, article_id, md5(html_gz::VARCHAR) FROM pages ORDER BY id"
    assert lake_rows(target, pages) == rows(db, pages)

    snapshots = pg_server.value(pg_database, SNAPSHOTS)
    next_id = pg_server.value(pg_database, "SELECT nextval('mediawatch.article_id_seq')")
    assert next_id > max(r[0] for r in rows(db, "SELECT id FROM articles")), (
        "a lake writer's next article id is above every migrated one"
    )
    again = run_cli("migrate", "--from", str(db), "--to", url)
    assert again.returncode == 0, again.stderr
    assert counts_printed(again.stdout) == counts
    assert "0 rows added" in again.stderr
    assert pg_server.value(pg_database, SNAPSHOTS) == snapshots, (
        "a run with nothing to add writes no snapshot"
    )


def test_killed_mid_way_then_run_again_gives_the_same_lake(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    db = build_archive(tmp_path / "archive.duckdb", copies=3)
    url = pg_server.url(pg_database, tmp_path / "lake")
    proc = subprocess.Popen(
        [str(MEDIAWATCH), "migrate", "--from", str(db), "--to", url, "--batch", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    deadline = time.monotonic() + 120
    killed_at = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with psycopg.connect(pg_server.conninfo(pg_database)) as con:
                row = con.execute("SELECT count(*) FROM mediawatch.article_keys").fetchone()
        except psycopg.Error:
            row = None  # the schema is not created yet
        if row and row[0] >= 3:
            proc.send_signal(signal.SIGKILL)
            killed_at = int(row[0])
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed_at, (
        f"the migrate ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    )
    total = rows(db, "SELECT count(*) FROM articles")[0][0]
    partial = lake_rows(target, "SELECT count(*) FROM articles")[0][0]
    assert partial < total, "killed mid-way: part of the archive is in the lake"

    resumed = run_cli("migrate", "--from", str(db), "--to", url, "--batch", "2")
    assert resumed.returncode == 0, resumed.stderr
    counts = counts_printed(resumed.stdout)
    assert all(src == lake for src, lake in counts.values()), resumed.stdout
    doubled = lake_rows(
        target,
        "SELECT (SELECT count(*) - count(DISTINCT (article_id, version)) FROM article_texts), "
        "(SELECT count(*) - count(DISTINCT id) FROM pages)",
    )
    assert doubled == [(0, 0)]
    order = " ORDER BY id"
    assert lake_rows(target, f"SELECT {ARTICLE} FROM articles{order}") == rows(
        db, f"SELECT {ARTICLE} FROM articles{order}"
    )


def test_a_held_archive_or_an_unreachable_lake_is_one_line(
    pg_server: pg.Server, tmp_path: Path
) -> None:
    db = build_archive(tmp_path / "archive.duckdb")
    down = run_cli(
        "migrate",
        "--from",
        str(db),
        "--to",
        f"postgresql://postgres@127.0.0.1:{pg._free_port()}/x?data={tmp_path}",
    )
    assert down.returncode == 1 and down.stderr.count("\n") == 1
    assert "cannot reach the lake's PostgreSQL" in down.stderr
    holder = duckdb.connect(str(db))  # a read-write holder, as a running daemon
    try:
        name = pg_server.create_database()
        try:
            held = run_cli(
                "migrate", "--from", str(db), "--to", pg_server.url(name, tmp_path / "lake")
            )
        finally:
            pg_server.drop_database(name)
    finally:
        holder.close()
    assert (
        held.returncode == 1 and "held for writing" in held.stderr and held.stderr.count("\n") == 1
    )
