"""End to end: a real crawl of a fake outlet on 127.0.0.1 through the CLI, checked row by row,
on both backends (the embedded file and the lake: the same rows through the same views)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.db import wal_bytes
from tests.conftest import (
    ARTICLE_PATHS,
    BACKENDS,
    SHARED,
    backend_db,
    config_file,
    run_cli,
    scrapy_crawl,
    server_for,
    serving_outlet,
)
from tests.conftest import rows as _rows
from tests.fakeweb import FakeWeb

Crawled = tuple[FakeWeb, Path, str]


def _crawl_once(web: FakeWeb, tmp_path: Path, db: str) -> Crawled:
    config = config_file(tmp_path, web.base)
    result = run_cli("crawl", "--config", str(config), "--db", db)
    assert result.returncode == 0, result.stderr
    return web, config, db


@pytest.fixture(scope="module", params=BACKENDS)
def archived(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crawled]:
    """One crawl per backend, shared by the tests that only read its archive."""
    tmp = tmp_path_factory.mktemp("crawl")
    with serving_outlet() as web, backend_db(request.param, tmp, server_for(request)) as db:
        yield _crawl_once(web, tmp, db)


@pytest.fixture
def crawled(fake_outlet: FakeWeb, tmp_path: Path, backend: str) -> Crawled:
    """A crawl of its own, for tests that crawl again."""
    return _crawl_once(fake_outlet, tmp_path, backend)


def test_crawl_archives_each_article_once_with_its_metadata(
    archived: Crawled,
) -> None:
    web, _, db = archived
    base = web.base.replace("http://", "https://")  # canonical_url is a scheme-folded identity key
    rows = _rows(
        db,
        "SELECT canonical_url, title, published_at, date_source, language, authors, feed_title, "
        "discovered_via, word_count FROM articles ORDER BY canonical_url",
    )
    by_url = {r[0]: r for r in rows}
    assert sorted(by_url) == sorted(
        [
            f"{base}/2024/05/17/elections-municipales",
            f"{base}/2024/05/18/climate-summit",
            f"{base}/2024/05/22/exporte-steigen",
            f"{base}/2024/05/23/cycling-lanes",
            f"{base}/geopolitique/trump-poutine-appel-ordre-mondial",  # its same-site rel=canonical
        ]
    ), "tracking parameters and fragments must not create extra articles"

    fr = by_url[f"{base}/2024/05/17/elections-municipales"]
    assert fr[1] == "Municipales : la participation en hausse dans les grandes villes"
    assert fr[2] == datetime(2024, 5, 17, 6, 30, tzinfo=UTC)
    assert fr[3] == "jsonld"
    assert fr[4] == "fr"
    assert fr[5] == ["Claire Martin"]
    assert fr[6] == "Municipales : la participation en hausse (flux)", (
        "the feed's title is kept beside the page's"
    )

    en = by_url[f"{base}/2024/05/18/climate-summit"]
    assert (en[2], en[3], en[4]) == (datetime(2024, 5, 18, 16, 45, tzinfo=UTC), "meta", "en")

    de = by_url[f"{base}/2024/05/22/exporte-steigen"]
    assert (de[2], de[3], de[4]) == (datetime(2024, 5, 22, 5, 15, tzinfo=UTC), "sitemap", "de")
    assert de[6] == "Exporte steigen den dritten Monat in Folge"
    assert de[7] == "sitemap"

    moved = by_url[f"{base}/2024/05/23/cycling-lanes"]
    assert moved[3] in ("sitemap", "url")
    aliases = {
        r[0]
        for r in _rows(
            db,
            "SELECT url FROM article_urls WHERE article_id = "
            "(SELECT id FROM articles WHERE canonical_url = ?)",
            [moved[0]],
        )
    }
    assert f"{base}/2024/05/23/old-cycling-url" in aliases, "the redirected-from URL is stored too"
    assert all(r[8] > 40 for r in rows)


def test_after_a_crawl_the_archive_file_alone_holds_everything(
    fake_outlet: FakeWeb, tmp_path: Path
) -> None:
    """Write sessions leave their work in DuckDB's log; `mediawatch crawl` folds it into the
    file at the end, so copying archive.duckdb (and nothing else) copies the archive. (The
    file backend's own promise: a lake has no such file.)"""
    _, _, db_url = _crawl_once(fake_outlet, tmp_path, str(tmp_path / "archive.duckdb"))
    db = Path(db_url)
    assert wal_bytes(db) == 0
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    assert (
        _rows(copy, "SELECT count(*) FROM articles")
        == _rows(db, "SELECT count(*) FROM articles")
        == [(5,)]
    )


def test_crawl_records_skips_and_the_run(archived: Crawled) -> None:
    web, _, db = archived
    skips = dict(_rows(db, "SELECT url, skip_reason FROM pages WHERE skip_reason IS NOT NULL"))
    base = web.base
    assert skips[f"{base}/2024/05/19/missing"] == "http_404"
    assert skips[f"{base}/2024/05/20/broken"] == "http_500"
    assert skips[f"{base}/2024/05/21/report.pdf"] == "not_html"
    # every archived article keeps its raw page
    orphans = _rows(
        db,
        "SELECT count(*) FROM articles a LEFT JOIN pages p ON p.id = a.page_id "
        "WHERE p.html_gz IS NULL",
    )
    assert orphans == [(0,)]
    (run,) = _rows(
        db,
        "SELECT outlet, status, articles_new, requests, responses, skipped, finished_at FROM crawl_runs",
    )
    assert run[0] == "courrier" and run[1] == "ok" and run[2] == 5
    assert run[3] >= 10 and run[6] is not None
    responses = json.loads(run[4])
    assert responses.get("404") == 1 and responses.get("200", 0) >= 8
    skipped = json.loads(run[5])
    assert skipped.get("http_404") == 1 and skipped.get("not_html") == 1
    assert skipped.get("filtered/offsite", 0) >= 1, "offsite links are counted, not followed"
    assert not web.requests_to("/about/"), "links outside article_pattern are not fetched"


def test_next_crawls_download_no_known_article_and_retry_the_failed_one(
    crawled: Crawled,
) -> None:
    web, config, db = crawled
    # The article that answered 500 is back. The first run kept no feed validators (an article
    # failed transiently), so the feed is read again and that article is fetched and archived.
    web.add("/2024/05/20/broken", web.fixture("moved.html").replace("cycling lanes", "tram lines"))
    web.log.clear()
    result = run_cli("crawl", "--config", str(config), "--db", str(db))
    assert result.returncode == 0, result.stderr
    fetched = [p for _, p in web.log]
    for path in [*ARTICLE_PATHS, "/2024/05/19/missing", "/2024/05/21/report.pdf"]:
        assert not any(p.startswith(path) for p in fetched), f"{path} fetched again: {fetched}"
    assert "/2024/05/20/broken" in fetched
    assert _rows(db, "SELECT count(*) FROM articles") == [(6,)]

    # Nothing failed this time: the third run costs a 304 for the feed and no article at all.
    web.log.clear()
    result = run_cli("crawl", "--config", str(config), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert not any(p.startswith("/20") for _, p in web.log), web.log
    statuses = dict(_rows(db, "SELECT url, last_status FROM http_state"))
    assert statuses[f"{web.base}/feed.xml"] == 304, "an unchanged feed costs one 304"
    asked = run_cli(
        "query", "SELECT url, last_status FROM http_state", "--db", db, "--format", "json"
    )
    assert asked.returncode == 0, asked.stderr
    assert {r["url"]: r["last_status"] for r in json.loads(asked.stdout)} == statuses
    runs = _rows(db, "SELECT status, articles_new FROM crawl_runs ORDER BY started_at")
    assert [r[1] for r in runs] == [5, 1, 0] and all(r[0] == "ok" for r in runs)


def test_a_stopped_run_keeps_no_feed_validators(
    fake_outlet: FakeWeb, tmp_path: Path, backend: str
) -> None:
    """A crawl stopped after reading the feed must not leave an ETag that hides its articles."""
    import signal
    import time

    def slow(handler) -> None:  # the article pages hang long enough for us to stop the crawl
        time.sleep(20)
        handler._send(200, b"<html></html>", {"Content-Type": "text/html"})

    for path in ("/2024/05/17/elections-municipales", "/2024/05/18/climate-summit"):
        fake_outlet.add_handler(path, slow)
    config = config_file(tmp_path, fake_outlet.base)
    db = backend
    from tests.conftest import MEDIAWATCH

    proc = subprocess.Popen(
        [str(MEDIAWATCH), "crawl", "--config", str(config), "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not fake_outlet.requests_to("/2024/05/17/") and time.monotonic() < deadline:
        time.sleep(0.2)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:  # the crawl subprocess: SIGINT is Scrapy's graceful stop
        os.kill(int(child), signal.SIGINT)
    proc.communicate(timeout=60)
    (etag,) = _rows(db, f"SELECT etag FROM http_state WHERE url = '{fake_outlet.base}/feed.xml'")[0]
    assert etag is None
    (status,) = _rows(db, "SELECT status FROM crawl_runs")[0]
    assert status == "stopped", "a run stopped by a signal is not recorded as ok"


def test_scrapy_crawl_command_works_too(fake_outlet: FakeWeb, tmp_path: Path, backend: str) -> None:
    config = config_file(tmp_path, fake_outlet.base)
    db = backend
    result = scrapy_crawl(config, db)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _rows(db, "SELECT count(*) FROM articles") == [(5,)]


def test_seed_article_is_archived_without_its_magazine_pitch(
    archived: Crawled,
) -> None:
    _, _, db = archived
    lines = [
        ln.strip()
        for ln in (SHARED / "seed" / "article.txt").read_text(encoding="utf-8").splitlines()
    ]
    pitch = lines[-3:]
    assert pitch[0] == "IMPORTANT - À lire"
    (article_id, text, summary) = _rows(
        db,
        "SELECT id, text, coalesce(summary, '') FROM articles WHERE title LIKE 'Trump et Poutine%'",
    )[0]
    for line in lines[:-3]:
        if line.startswith("🔥"):
            continue  # the key-points box's label; its points are the summary
        if line.startswith("- "):
            assert line[2:] in summary, f"key point lost: {line}"
        else:
            assert line in text, f"article paragraph lost: {line[:60]}"
    assert (
        "IMPORTANT - À lire" not in text
        and "Abonnez-vous" not in text
        and "revue papier" not in text
    )
    removed = _rows(
        db,
        "SELECT kind, rule, text FROM removed_blocks WHERE article_id = ? ORDER BY position",
        [article_id],
    )
    assert removed, "the removal is auditable"
    assert any("Abonnez-vous" in r[2] for r in removed)
    assert all(r[0] and r[1] for r in removed)
