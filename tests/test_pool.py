"""Cleaning in worker processes gives exactly what cleaning in-process gives, really uses the
workers, and a crawl killed -9 leaves none of them behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import (
    REPO,
    RSS,
    build_outlet,
    config_file,
    crawlproc_command,
    run_cli,
    scrapy_crawl,
)
from tests.conftest import rows as _rows
from tests.fakeweb import FakeWeb
from tests.procs import alive, descendants

# Not `url`: which tracking variant of a URL is fetched first (feed or section link) depends
# on which discovery response arrives first, in both modes alike.
ARTICLE_COLUMNS = (
    "canonical_url, title, authors, published_at, modified_at, date_source, language, "
    "section, tags, description, summary, image_url, site_name, text, word_count, paywalled, "
    "promo_flagged, content_hash, feed_title, feed_published_at, discovered_via, "
    "cross_site_canonical, extractor_version"
)


def _crawl(tmp_path: Path, workers: str, web: FakeWeb | None = None) -> tuple[Path, str]:
    """Crawl a fresh fake outlet with MEDIAWATCH_WORKERS=workers; (archive, crawl log)."""
    if web is None:
        web = FakeWeb()
        build_outlet(web)
    web.start()
    try:
        work = tmp_path / f"w{workers}"
        work.mkdir()
        config = config_file(work, web.base)
        db = work / "archive.duckdb"
        log = work / "crawl.log"
        result = run_cli(
            "crawl",
            "--config",
            str(config),
            "--db",
            str(db),
            "--log",
            str(log),
            env={"MEDIAWATCH_WORKERS": workers},
        )
        assert result.returncode == 0, result.stderr
        return db, log.read_text()
    finally:
        web.stop()


def _archived(db: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    articles = _rows(db, f"SELECT {ARTICLE_COLUMNS} FROM articles ORDER BY canonical_url")
    removed = _rows(
        db,
        "SELECT a.canonical_url, r.version, r.position, r.kind, r.rule, r.text "
        "FROM removed_blocks r JOIN articles a ON a.id = r.article_id ORDER BY ALL",
    )
    pages = _rows(
        db,
        "SELECT split_part(url, '?', 1) AS u, split_part(final_url, '?', 1), status, skip_reason, "
        "detail FROM pages ORDER BY ALL",
    )
    return articles, removed, pages


_PORT = re.compile(r"127\.0\.0\.1:\d+")


def _portless(rows: list[tuple]) -> list[tuple]:
    """Each run serves on its own port: fold 127.0.0.1:PORT so the runs compare."""
    return [tuple(_PORT.sub("HOST", v) if isinstance(v, str) else v for v in row) for row in rows]


def test_worker_pool_archives_exactly_what_in_process_cleaning_does(tmp_path: Path) -> None:
    db0, log0 = _crawl(tmp_path, "0")
    db2, log2 = _crawl(tmp_path, "2")
    assert "cleaning pages in-process" in log0
    assert "cleaning pages in 2 worker processes" in log2
    used = [line for line in log2.splitlines() if "cleaned pages in" in line]
    assert used and "in 0 worker" not in used[-1], f"no page went through a worker: {used}"

    articles0, removed0, pages0 = (_portless(x) for x in _archived(db0))
    articles2, removed2, pages2 = (_portless(x) for x in _archived(db2))
    assert len(articles0) == 5 and removed0, "the fake outlet has 5 articles, the seed a promo"
    names = [c.strip() for c in ARTICLE_COLUMNS.split(",")]
    diffs = [
        (a0[0], name, v0, v2)
        for a0, a2 in zip(articles0, articles2, strict=True)
        for name, v0, v2 in zip(names, a0, a2, strict=True)
        if v0 != v2
    ]
    assert not diffs, diffs
    assert removed2 == removed0
    assert pages2 == pages0


def test_feed_hints_reach_an_article_a_section_page_linked_first(tmp_path: Path) -> None:
    """The cause of the flaky comparison above: the section page links an article that the
    feed lists too (with its own title and date). When the feed answered after that article
    was fetched, the feed's title, date and `discovered_via` were lost, so two crawls of the
    same outlet archived different rows. Here the feed answers only once the article was
    served (or after 3 s, which is what happens when section links wait for the feed)."""
    web = FakeWeb()
    build_outlet(web)
    path = "/2024/05/17/elections-municipales"
    page = web.routes[path]
    served = threading.Event()
    feed = RSS.format(base=web.base).encode()

    def article(handler) -> None:
        handler._send(page.status, page.body, page.headers)
        served.set()

    def late_feed(handler) -> None:
        served.wait(3)
        handler._send(200, feed, {"Content-Type": "application/rss+xml"})

    web.add_handler(path, article)
    web.add_handler("/feed.xml", late_feed)
    db, _ = _crawl(tmp_path, "0", web)
    assert _rows(
        db,
        "SELECT feed_title, feed_published_at IS NOT NULL, discovered_via FROM articles "
        f"WHERE canonical_url LIKE '%{path}'",
    ) == [("Municipales : la participation en hausse (flux)", True, "feed")]
    assert _rows(db, "SELECT count(*) FROM articles") == [(5,)], (
        "the section-only article is archived too"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_crawl_killed_minus_9_leaves_no_worker(fake_outlet: FakeWeb, tmp_path: Path) -> None:
    def slow(handler) -> None:  # keeps the crawl running while we look at its processes
        time.sleep(30)
        handler.send_response(200)
        handler.end_headers()

    fake_outlet.add_handler("/feed.xml", slow)
    config = config_file(tmp_path, fake_outlet.base)
    proc = subprocess.Popen(
        crawlproc_command(config, tmp_path / "a.duckdb", "courrier"),
        cwd=REPO,
        env={**os.environ, "MEDIAWATCH_WORKERS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        tree: set[int] = set()
        while time.monotonic() < deadline:  # forkserver + 2 workers (+ resource tracker)
            tree = set(descendants(proc.pid))
            if len(tree) >= 3:
                break
            time.sleep(0.2)
        assert len(tree) >= 3, f"the pool did not start: {tree}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(p) for p in tree):
            time.sleep(0.2)
        assert not [p for p in tree if alive(p)], "workers outlived their crawl"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_page_the_cleaner_cannot_finish_does_not_stall_the_crawl(
    fake_outlet: FakeWeb, tmp_path: Path
) -> None:
    config = config_file(tmp_path, fake_outlet.base)
    db = tmp_path / "archive.duckdb"
    result = scrapy_crawl(config, db, "MEDIAWATCH_WORKERS=1", "MEDIAWATCH_CLEAN_TIMEOUT=0.001")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "worker killed" in result.stderr
    skipped = _rows(
        db, "SELECT skip_reason, detail FROM pages WHERE skip_reason = 'extraction_error'"
    )
    assert skipped and all(d == "cleaning took over 0.001s" for _, d in skipped)
