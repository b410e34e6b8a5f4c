"""`mediawatch reprocess` on a lake (archive/lake/reclean.py): the re-cleaned text is what
search finds, readers never see an article half re-cleaned, a kill -9 between the lake
commit and PostgreSQL's settle leaves a consistent lake that the next reprocess completes,
and a lake of schema version 2 is upgraded with its removed blocks kept."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from archive import reclean
from archive.lake.bands import keys_of
from archive.lake.connect import attach
from archive.lake.ingest import LakeWriter
from archive.lake.reclean import LakeRecleaner
from archive.lake.rows import append
from archive.lake.schema import SCHEMA_VERSION, ensure_schema
from archive.target import LakeTarget
from pipelines.clean import PIPELINE_VERSION
from pipelines.fingerprint import content_hash, minhash_bands
from pipelines.workers import clean_stored
from tests import pg
from tests.conftest import MEDIAWATCH, REPO, outlet_config, rows, run_cli
from tests.fakeweb import FakeWeb
from tests.lake.archives import SEED as SEED_HTML
from tests.lake.archives import page

SEED = "/2024/05/24/trump-poutine-appel"
# Two paragraphs of the seed article, each with a word no other page of the outlet has: the
# crawl's rules strip the first, the reprocess's rules strip the second instead.
FIRST = "Pire : la deuxième série de pourparlers"  # holds "Istanbul"
SECOND = "Et contrairement à l.administration Biden"  # holds "paternaliste"
STATE = """
SELECT position('Istanbul' IN a.text) > 0, position('paternaliste' IN a.text) > 0,
       (SELECT count(*) FROM removed_blocks r WHERE r.article_id = a.id AND r.version = a.version
        AND r.text LIKE '%Istanbul%'),
       (SELECT count(*) FROM removed_blocks r WHERE r.article_id = a.id AND r.version = a.version
        AND r.text LIKE '%paternaliste%')
FROM articles a WHERE a.id = ?
"""
OLD = (False, True, 1, 0)  # as the crawl cleaned it
NEW = (True, False, 0, 1)  # as the reprocess cleans it


def crawled(web: FakeWeb, tmp_path: Path, url: str) -> tuple[Path, int]:
    """The outlet crawled into the lake with FIRST stripped, then the config changed to
    strip SECOND: the config's path and the seed article's id."""
    config = tmp_path / "outlets.toml"
    config.write_text(outlet_config(web.base, extra=f'strip_patterns = ["^{FIRST}"]'))
    done = run_cli("crawl", "--config", str(config), "--db", url)
    assert done.returncode == 0, done.stderr
    ((article,),) = rows(url, f"SELECT id FROM articles WHERE url LIKE '%{SEED}'")
    config.write_text(outlet_config(web.base, extra=f'strip_patterns = ["^{SECOND}"]'))
    return config, int(article)


def state(url: str, article: int) -> tuple[Any, ...]:
    """What a reader sees of the article in one statement: its text and removed blocks."""
    return rows(url, STATE, [article])[0]


def found(url: str, word: str) -> set[int]:
    result = run_cli("search", word, "--db", url, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {h["id"] for h in json.loads(result.stdout)}


def test_a_reprocessed_lake_article_is_read_whole_and_searched_by_its_new_words(
    fake_outlet: FakeWeb, tmp_path: Path, lake: tuple[str, LakeTarget]
) -> None:
    url, target = lake
    config, article = crawled(fake_outlet, tmp_path, url)
    assert state(url, article) == OLD
    assert article in found(url, "paternaliste") and article not in found(url, "Istanbul")

    seen: list[tuple[Any, ...]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(state(url, article))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = run_cli("reprocess", "--config", str(config), "--db", url, "--format", "json")
    finally:
        stop.set()
        reader.join()
    assert done.returncode == 0, done.stderr
    assert [c["article_id"] for c in json.loads(done.stdout)["changed"]] == [article]
    assert seen and set(seen) <= {OLD, NEW}, f"a half re-cleaned article was read: {set(seen)}"
    assert state(url, article) == NEW
    assert article in found(url, "Istanbul"), "the new words are found"
    assert article not in found(url, "paternaliste"), "the old ones are not"
    (versions,) = rows(url, f"SELECT count(*) FROM article_versions WHERE article_id = {article}")
    assert versions == (0,), "a re-clean is no new version of the article"
    ((text,),) = rows(url, "SELECT text FROM articles WHERE id = ?", [article])
    with psycopg.connect(target.libpq()) as pg_con:
        held = {
            int(k)
            for (k,) in pg_con.execute(
                "SELECT band_key FROM mediawatch.lsh_bands WHERE article_id = %s", [article]
            )
        }
    assert set(keys_of(minhash_bands(text))) <= held, "a copy of the new text finds the article"


def test_a_reprocess_killed_before_it_settles_is_completed_by_the_next(
    fake_outlet: FakeWeb, tmp_path: Path, lake: tuple[str, LakeTarget], pg_server: pg.Server
) -> None:
    url, target = lake
    config, article = crawled(fake_outlet, tmp_path, url)
    with psycopg.connect(target.libpq()) as hold:
        # the settle updates this row: held, the reprocess stops between lake and settle
        hold.execute(
            "SELECT 1 FROM mediawatch.article_versions WHERE article_id = %s FOR UPDATE", [article]
        )
        proc = subprocess.Popen(
            [str(MEDIAWATCH), "reprocess", "--config", str(config), "--db", url],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while state(url, article) == OLD and proc.poll() is None:
                assert time.monotonic() < deadline, "the reprocess never reached the lake"
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()[1]
            assert article not in found(url, "Istanbul"), "the kill comes before the settle"
        finally:
            proc.kill()
            proc.wait()
        hold.rollback()
    sessions = (
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'mw-%-{proc.pid}-%'"
    )
    deadline = time.monotonic() + 30
    while pg_server.value(target.dbname, sessions):
        assert time.monotonic() < deadline, "the killed process's sessions did not end"
        time.sleep(0.1)

    assert state(url, article) == NEW, "the lake holds the whole re-clean"
    assert pg_server.value(target.dbname, "SELECT count(*) FROM mediawatch.reclean_batches") == 1

    again = run_cli("reprocess", "--config", str(config), "--db", url, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] == [], "nothing was left half done"
    assert pg_server.value(target.dbname, "SELECT count(*) FROM mediawatch.reclean_batches") == 0
    assert article in found(url, "Istanbul") and article not in found(url, "paternaliste")
    ((lake_hash,),) = rows(url, f"SELECT content_hash FROM articles WHERE id = {article}")
    pg_hash = pg_server.value(
        target.dbname,
        f"SELECT content_hash FROM mediawatch.article_versions WHERE article_id = {article}",
    )
    assert pg_hash == lake_hash, "the ingest compares a page fetched again with the new text"


def test_a_version_2_lake_is_upgraded_with_its_removed_blocks(
    lake: tuple[str, LakeTarget], pg_server: pg.Server
) -> None:
    url, target = lake
    ensure_schema(target)
    con = attach(target, read_only=False)
    try:  # the lake as version 2 made it: removed_blocks a table, no recleans (a step a commit)
        for step in (
            "DROP VIEW removed_blocks",
            "DROP TABLE recleans",
            "ALTER TABLE removed_block_log DROP COLUMN cleaned_at",
            "ALTER TABLE removed_block_log RENAME TO removed_blocks",
            "INSERT INTO removed_blocks VALUES (7, 1, 3, 'subscription', 'fr.sub', 'Abonnez-vous')",
        ):
            con.execute(step)
    finally:
        con.close()
    with psycopg.connect(target.libpq(), autocommit=True) as db:
        db.execute("UPDATE mediawatch.schema_version SET version = 2")
    assert ensure_schema(target) is True
    assert (
        pg_server.value(target.dbname, "SELECT max(version) FROM mediawatch.schema_version")
        == SCHEMA_VERSION
    )
    assert rows(
        url, "SELECT article_id, version, position, kind, rule, text FROM removed_blocks"
    ) == [(7, 1, 3, "subscription", "fr.sub", "Abonnez-vous")]
    assert rows(url, "SELECT count(*) FROM recleans") == [(0,)]


def test_texts_an_older_mediawatch_made_are_marked_with_their_blocks_kept(
    fake_outlet: FakeWeb, tmp_path: Path, lake: tuple[str, LakeTarget]
) -> None:
    url, target = lake
    config, _article = crawled(fake_outlet, tmp_path, url)
    config.write_text(outlet_config(fake_outlet.base, extra=f'strip_patterns = ["^{FIRST}"]'))
    blocks = sorted(rows(url, "SELECT * FROM removed_blocks"))
    assert blocks, "the crawl removed blocks"
    con = attach(target, read_only=False)
    try:  # every text as an older mediawatch would have left it (the log's newest row wins)
        cursor = con.execute(
            "SELECT * REPLACE ('0.old' AS extractor_version, now() AS recorded_at) FROM article_texts"
        )
        names = [d[0] for d in cursor.description]
        older = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        con.execute("BEGIN")
        append(con, "article_texts", older)
        con.execute("COMMIT")
    finally:
        con.close()
    assert rows(url, "SELECT DISTINCT extractor_version FROM articles") == [("0.old",)]

    done = run_cli("reprocess", "--config", str(config), "--db", url, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == [], "the same rules change no text"
    assert rows(url, "SELECT DISTINCT extractor_version FROM articles") == [(PIPELINE_VERSION,)]
    assert sorted(rows(url, "SELECT * FROM removed_blocks")) == blocks, "and keep their blocks"


def test_a_reclean_beside_a_writer_that_adds_a_version_keeps_the_newer_one_current(
    lake: tuple[str, LakeTarget], pg_server: pg.Server
) -> None:
    """The reprocess read version 1 as current; a writer then committed version 2 before the
    reprocess wrote: version 1 is re-cleaned as an earlier version, version 2 stays current
    in the views and in the search index."""
    url, target = lake
    address = "https://news.example/2024/05/24/trump-poutine-appel"
    seed = SEED_HTML.read_text(encoding="utf-8")
    with LakeWriter(target) as w:
        w.ingest_records([page(address, seed)])
        ((article,),) = rows(url, "SELECT id FROM articles")
        recleaner = LakeRecleaner(url)
        try:
            with recleaner.reading() as con:
                (stored,) = reclean.stored_pages(con, [article])
            cleaned = clean_stored(
                stored.html, stored.url, stored.hints, (), (f"^{SECOND}",), frozenset()
            )
            edited = seed.replace(
                "Vers un nouvel équilibre mondial ?", "Vers Ankara, un équilibre nouveau ?"
            )
            w.ingest_records([page(address, edited)])  # the writer's version 2 lands first
            text = cleaned.article["text"]
            rewrite = reclean.Rewrite(
                stored, cleaned.article, cleaned.removed, content_hash(text), []
            )
            recleaner.write([rewrite], [], PIPELINE_VERSION, datetime.now(UTC))
        finally:
            recleaner.close()
    ((version, current),) = rows(url, f"SELECT version, text FROM articles WHERE id = {article}")
    assert version == 2 and "Ankara" in current and "paternaliste" in current
    ((earlier,),) = rows(url, f"SELECT text FROM article_versions WHERE article_id = {article}")
    assert "paternaliste" not in earlier and "Ankara" not in earlier, "version 1, re-cleaned"
    removed = rows(url, f"SELECT version, text FROM removed_blocks WHERE article_id = {article}")
    assert any(v == 1 and "paternaliste" in t for v, t in removed)
    assert not any(v == 2 and "paternaliste" in t for v, t in removed)
    assert article in found(url, "Ankara") and article in found(url, "paternaliste")
    hashes = pg_server.value(
        target.dbname,
        "SELECT array_agg(content_hash ORDER BY version) FROM mediawatch.article_versions",
    )
    assert (
        hashes[0] == content_hash(text)
        and hashes[1] == rows(url, "SELECT content_hash FROM articles")[0][0]
    )


def test_reprocess_on_a_database_without_a_lake_says_so_and_creates_none(
    lake: tuple[str, LakeTarget], pg_server: pg.Server, tmp_path: Path
) -> None:
    url, target = lake
    done = run_cli("reprocess", "--db", url, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "no archive in this lake yet" in done.stderr
    assert pg_server.value(target.dbname, "SELECT to_regclass('mediawatch.schema_version')") is None
