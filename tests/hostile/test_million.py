"""A sitemap of a million URLs, generated as it is sent: read as a stream, with flat memory,
giving its first entries up to the outlet's article budget. Its own crawl, so the peak RSS
measured is this crawl's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.conftest import MILLION_BUDGET, build_million, crawl_env, rows, run_measured
from tests.hostile.web import HostileWeb, million_url_sitemap

RSS_LIMIT_KB = 450 * 1024


@pytest.fixture(scope="module")
def million(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HostileWeb, Path, int, str, int]]:
    tmp = tmp_path_factory.mktemp("million")
    web = HostileWeb()
    build_million(web)
    # The same million URLs uncompressed: about 100 MB, over the sitemap protocol's 50 MB.
    web.add_handler(
        "/sitemaps/million.xml",
        web.stream(million_url_sitemap(web.base, gzip=False), {"Content-Type": "application/xml"}),
    )
    web.start()
    config = tmp / "outlets.toml"
    config.write_text(f"""
[[outlet]]
name = "million"
sitemaps = ["{web.base}/sitemaps/million.xml.gz", "{web.base}/sitemaps/million.xml"]
max_articles = {MILLION_BUDGET}
delay = 0
concurrency = 8
""")
    db = tmp / "archive.duckdb"
    try:
        # Generating a million entries takes the server a few seconds: a realistic timeout.
        rc, stderr, maxrss = run_measured(
            "crawl", "--config", str(config), "--db", str(db), env=crawl_env(DOWNLOAD_TIMEOUT=60)
        )
        yield web, db, rc, stderr, maxrss
    finally:
        web.stop()


def test_a_million_url_sitemap_gives_its_first_entries_in_flat_memory(million: tuple) -> None:
    web, db, rc, stderr, maxrss = million
    assert rc == 0, stderr[-2000:]
    print(f"million-URL sitemaps: peak RSS {maxrss // 1024} MB")
    assert maxrss < RSS_LIMIT_KB, f"peak RSS {maxrss // 1024} MB for a million-URL sitemap"
    (new,) = rows(db, "SELECT articles_new FROM crawl_runs")[0]
    assert new == MILLION_BUDGET, "the budget of articles, from the first entries"
    fetched = [p for p in web.paths() if "/million-" in p]
    assert len(fetched) == MILLION_BUDGET and all(int(p[-7:]) < MILLION_BUDGET + 5 for p in fetched)


def test_an_uncompressed_sitemap_over_the_protocol_limit_is_refused_and_counted(
    million: tuple,
) -> None:
    _web, db, _rc, _stderr, _ = million
    (errors,) = rows(db, "SELECT errors FROM crawl_runs")[0]
    assert errors >= 1, "the 100 MB sitemap failed: the run says so"
