"""Shared fixtures: a fake outlet on 127.0.0.1 built from stored pages, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from archive.target import LakeTarget, parse_target
from tests import pg
from tests.fakeweb import FakeWeb, gz

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MEDIAWATCH = Path(sys.executable).parent / "mediawatch"


def rows(db: Path | str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a query on an archive (a file, or a lake URL), opened read-only as a user would
    while the daemon runs: a file by plain DuckDB, a lake through its reader (user views)."""
    import duckdb

    if str(db).startswith("postgresql://"):
        from archive.query import open_archive

        con = open_archive(str(db), fts=False)
    else:
        con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def crawlproc_command(config: Path, db: Path, outlet: str, run_id: str = "r1") -> list[str]:
    """One crawl run in its own process, as the daemon and `mediawatch crawl` start it."""
    cmd = ["-m", "crawler.crawlproc", "--config", str(config), "--db", str(db), "--run-id", run_id]
    return [sys.executable, *cmd, outlet]


def scrapy_crawl(
    config: Path, db: Path | str, *settings: str, outlet: str = "courrier", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`scrapy crawl outlet -a outlet=NAME` as a Scrapy user runs it; `settings`: more NAME=VALUE."""
    scrapy = Path(sys.executable).parent / "scrapy"
    extra = [arg for setting in settings for arg in ("-s", setting)]
    return subprocess.run(
        [
            str(scrapy),
            "crawl",
            "outlet",
            "-a",
            f"outlet={outlet}",
            "-s",
            f"MEDIAWATCH_CONFIG={config}",
            "-s",
            f"MEDIAWATCH_DB={db}",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `mediawatch` console script as a user would."""
    full_env = {**os.environ, "MEDIAWATCH_LOG_LEVEL": "INFO", **(env or {})}
    return subprocess.run(
        [str(MEDIAWATCH), *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=cwd or REPO,
    )


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Le Courrier du Test</title><link>{base}/</link>
<item><title>Municipales : la participation en hausse (flux)</title>
  <link>{base}/2024/05/17/elections-municipales?utm_source=rss&amp;utm_medium=feed#top</link>
  <pubDate>Fri, 17 May 2024 06:30:00 GMT</pubDate></item>
<item><title>Climate summit ends with a pledge on methane</title>
  <link>{base}/2024/05/18/climate-summit?fbclid=abc123</link>
  <pubDate>Sat, 18 May 2024 16:45:00 GMT</pubDate></item>
<item><title>Gone</title><link>{base}/2024/05/19/missing</link></item>
<item><title>Broken</title><link>{base}/2024/05/20/broken</link></item>
<item><title>Report</title><link>{base}/2024/05/21/report.pdf</link></item>
<item><title>Somewhere else</title><link>http://elsewhere.invalid/2024/05/22/x</link></item>
</channel></rss>"""

SITEMAP_INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/news-sitemap.xml.gz</loc><lastmod>2024-05-23T10:00:00Z</lastmod></sitemap>
</sitemapindex>"""

NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>{base}/2024/05/22/exporte-steigen</loc>
  <news:news><news:publication><news:name>Testzeitung</news:name><news:language>de</news:language></news:publication>
  <news:publication_date>2024-05-22T07:15:00+02:00</news:publication_date>
  <news:title>Exporte steigen den dritten Monat in Folge</news:title></news:news></url>
<url><loc>{base}/2024/05/23/old-cycling-url</loc>
  <news:news><news:publication><news:name>Testzeitung</news:name><news:language>en</news:language></news:publication>
  <news:publication_date>2024-05-23T09:00:00Z</news:publication_date>
  <news:title>City council approves new cycling lanes</news:title></news:news></url>
</urlset>"""


# the article pages of build_outlet (a crawl archives 5: the old cycling URL redirects)
ARTICLE_PATHS = [
    "/2024/05/17/elections-municipales",
    "/2024/05/18/climate-summit",
    "/2024/05/22/exporte-steigen",
    "/2024/05/23/old-cycling-url",
    "/2024/05/23/cycling-lanes",
    "/2024/05/24/trump-poutine-appel",
]


def build_outlet(web: FakeWeb) -> None:
    base = web.base
    web.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    web.add("/feed.xml", RSS.format(base=base), content_type="application/rss+xml", etag=True)
    web.add(
        "/sitemap_index.xml",
        SITEMAP_INDEX.format(base=base),
        content_type="application/xml",
        etag=True,
    )
    web.add(
        "/news-sitemap.xml.gz",
        gz(NEWS_SITEMAP.format(base=base)),
        content_type="application/x-gzip",
    )
    web.add("/politique/", web.fixture("section.html"))
    web.add("/2024/05/17/elections-municipales", web.fixture("elections.html"))
    web.add("/2024/05/18/climate-summit", web.fixture("climate.html"))
    web.add("/2024/05/19/missing", "<html><body>Page introuvable</body></html>", status=404)
    web.add("/2024/05/20/broken", "<html><body>Internal error</body></html>", status=500)
    web.add("/2024/05/21/report.pdf", b"%PDF-1.4 fake pdf bytes", content_type="application/pdf")
    web.add("/2024/05/22/exporte-steigen", web.fixture("wirtschaft.html"))
    web.add(
        "/2024/05/23/old-cycling-url",
        b"",
        status=301,
        headers={"Location": f"{base}/2024/05/23/cycling-lanes"},
    )
    web.add("/2024/05/23/cycling-lanes", web.fixture("moved.html"))
    seed = (SHARED / "seed" / "article.html").read_text(encoding="utf-8")
    web.add(
        "/2024/05/24/trump-poutine-appel",
        seed.replace("https://courrier-strategique.example", base),
    )


def outlet_config(base: str, name: str = "courrier", extra: str = "") -> str:
    return f"""
[defaults]
delay = 0
concurrency = 8

[[outlet]]
name = "{name}"
feeds = ["{base}/feed.xml"]
sitemaps = ["{base}/sitemap_index.xml"]
start_urls = ["{base}/politique/"]
article_pattern = "/20\\\\d\\\\d/"
language = "fr"
every = "2s"
{extra}
"""


def config_file(directory: Path, base: str, extra: str = "") -> Path:
    """directory/outlets.toml holding outlet_config(base, extra=extra), the path returned."""
    config = directory / "outlets.toml"
    config.write_text(outlet_config(base, extra=extra))
    return config


@contextmanager
def serving_outlet() -> Iterator[FakeWeb]:
    """The stored outlet (build_outlet) served on 127.0.0.1 for the length of the block."""
    web = FakeWeb()
    build_outlet(web)
    web.start()
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def fake_outlet() -> Iterator[FakeWeb]:
    with serving_outlet() as web:
        yield web


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    """The machine's PostgreSQL, or a throwaway cluster (tests/pg.py); a failure, never a skip."""
    try:
        server = pg.server()
    except pg.NoPostgres as exc:
        pytest.fail(str(exc), pytrace=False)  # CI must see it
    yield server
    server.stop()


@pytest.fixture
def pg_database(pg_server: pg.Server) -> Iterator[str]:
    """A uniquely named, empty database, dropped after the test."""
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def lake(pg_server: pg.Server, pg_database: str, tmp_path: Path) -> tuple[str, LakeTarget]:
    """A lake in its own database, data under tmp_path/lake: its URL and its target."""
    url = pg_server.url(pg_database, tmp_path / "lake")
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    return url, target


BACKENDS = ("file", "lake")


@contextmanager
def backend_db(kind: str, directory: Path, server: pg.Server | None = None) -> Iterator[str]:
    """The `--db` value of a `kind` archive under `directory`: the embedded file, or a lake in
    a database of its own (dropped after) whose machine home (spool, logs) is under
    `directory` too, never in the repository's data/."""
    if kind == "file":
        yield str(directory / "data" / "archive.duckdb")
        return
    assert server is not None, "a lake needs the pg_server fixture"
    name = server.create_database()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MEDIAWATCH_LAKE_HOME", str(directory / "lake-home"))
            yield server.url(name, directory / "lake")
    finally:
        server.drop_database(name)


@contextmanager
def backend_copy(
    kind: str, archive: Path, directory: Path, server: pg.Server | None = None
) -> Iterator[str]:
    """The file `archive` as the `kind` backend: the file itself, or a lake it is migrated into
    as `mediawatch migrate` does (the same rows, the same ids, the search index built)."""
    if kind == "file":
        yield str(archive)
        return
    from archive.lake.migrate import migrate_archive
    from archive.lake.search_index import reindex

    with backend_db(kind, directory, server) as url:
        target = parse_target(url)
        assert isinstance(target, LakeTarget)
        migrate_archive(archive, target)
        reindex(target)
        yield url


def server_for(request: pytest.FixtureRequest) -> pg.Server | None:
    """The PostgreSQL a backend-parametrised fixture needs: the session's, for a lake."""
    return request.getfixturevalue("pg_server") if request.param == "lake" else None


@contextmanager
def built_backend(
    request: pytest.FixtureRequest, directory: Path, build: Callable[[Path], Path]
) -> Iterator[str]:
    """`build`'s archive (made as a file under `directory`) on the backend of `request.param`."""
    archive = build(directory / "archive.duckdb")
    with backend_copy(request.param, archive, directory, server_for(request)) as db:
        yield db


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The `--db` value of an end-to-end test, once per backend: the embedded DuckDB file, then
    a lake (catalog in a fresh PostgreSQL database, data under tmp_path)."""
    with backend_db(request.param, tmp_path, server_for(request)) as db:
        yield db


_SLOW_SIGNS = (
    "run_cli(",
    "scrapy_crawl(",
    "subprocess",
    "Popen",
    "run_crawl(",
    "_crawl(",
    "chaos",
    "MEDIAWATCH",
)


def _looks_slow(func: object) -> bool:
    import inspect

    try:
        source = inspect.getsource(func)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return any(sign in source for sign in _SLOW_SIGNS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that starts processes or crawls (itself or through a fixture):
    `make test-fast` runs the rest, `make test` runs all."""
    for item in items:
        func = getattr(item, "function", None)
        info = getattr(item, "_fixtureinfo", None)
        fixtures = [
            d.func for defs in (info.name2fixturedefs.values() if info else ()) for d in defs
        ]
        if any(_looks_slow(f) for f in (func, *fixtures) if f is not None):
            item.add_marker(pytest.mark.slow)
