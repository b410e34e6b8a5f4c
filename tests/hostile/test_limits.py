"""What a page, a header section, a feed field or a sitemap index can do to a crawl (issue 13):
bounded headers, invalid Unicode repaired where it enters, the site boundary with its ports
and addresses, an oversized robots.txt, big sitemap indexes read newest first.

One `mediawatch crawl` of several outlets covers most cases; the sitemap index needs two
runs, the article patterns a crawl of their own (today's code hangs on them)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import Hostile, crawl_env, feed, rows, run_measured
from tests.hostile.web import MB, HostileWeb, article_html

HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml"


def _outlet(name: str, extra: str) -> str:
    return f'\n[[outlet]]\nname = "{name}"\narticle_pattern = "/20\\\\d\\\\d/"\nevery = "1h"\n{extra}\n'


def _crawl(
    tmp: Path,
    config: str,
    webs: dict[str, HostileWeb],
    *names: str,
    db: Path | None = None,
    **settings: Any,
) -> Hostile:
    path = tmp / "outlets.toml"
    path.write_text("[defaults]\ndelay = 0\nconcurrency = 8\n" + config)
    db = db or tmp / "data" / "archive.duckdb"
    started = time.monotonic()
    rc, stderr, maxrss = run_measured(
        "crawl",
        "--config",
        str(path),
        "--db",
        str(db),
        "--timeout",
        "90",
        "--log",
        str(tmp / "crawl.log"),
        *names,
        env=crawl_env(**settings),
    )
    return Hostile(db, path, rc, stderr, maxrss, time.monotonic() - started, webs)


def _page(db: Path, url: str) -> tuple[Any, ...]:
    found = rows(
        db,
        "SELECT skip_reason, detail, status, article_id FROM pages WHERE url = ? "
        "ORDER BY fetched_at",
        [url],
    )
    assert found, f"no page recorded for {url}: lost without a word"
    return found[0]


def _last_run(db: Path, outlet: str) -> dict[str, Any]:
    (row,) = rows(
        db,
        "SELECT status, skipped, message, errors FROM crawl_runs WHERE outlet = ? "
        "ORDER BY started_at DESC LIMIT 1",
        [outlet],
    )
    return {
        "status": row[0],
        "skipped": json.loads(row[1] or "{}"),
        "message": row[2],
        "errors": row[3],
    }


# -- one crawl: headers, Unicode, boundary, robots.txt ----------------------------------------


def build_headers(web: HostileWeb) -> list[str]:
    web.add_handler("/2024/09/01/header-flood", web.header_flood())
    web.add_handler(
        "/2024/09/01/header-count",
        web.many_headers(5000, article_html("Five thousand headers", 51).encode()),
    )
    web.add_handler(
        "/2024/09/01/some-headers",
        web.many_headers(40, article_html("Forty headers are fine", 52).encode()),
    )
    paths = ["/2024/09/01/header-flood", "/2024/09/01/header-count", "/2024/09/01/some-headers"]
    web.add("/headers-feed.xml", feed(web.base, paths), content_type=RSS)
    return paths


LONE = "\\ud83d"  # a JSON escape of half a surrogate pair


def build_unicode(web: HostileWeb) -> None:
    base = web.base
    web.add(
        "/unicode-rss.xml",
        f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Emoji</title>
<item><title>Smile &#55357;&#56832; at the harbour</title><link>{base}/2024/09/02/emoji-title</link></item>
<item><title>Half a smile &#55357; only</title><link>{base}/2024/09/02/half-emoji-title</link></item>
<item><title>A plain neighbour</title><link>{base}/2024/09/02/plain-neighbour</link></item>
</channel></rss>""",
        content_type=RSS,
    )
    web.add(
        "/unicode-feed.json",
        (
            '{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": ['
            f'{{"id": "1", "url": "{base}/2024/09/02/json-lone", "title": "Lone {LONE} half"}},'
            f'{{"id": "2", "url": "{base}/2024/09/02/json-neighbour", "title": "Neighbour"}}]}}'
        ).encode(),
        content_type="application/feed+json",
    )
    web.add(
        "/deep-feed.json",
        b'{"items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        content_type="application/feed+json",
    )
    ld = (
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
        f'"headline": "Harbour {LONE} deal", "author": {{"@type": "Person", "name": "Ana {LONE}"}}, '
        '"datePublished": "2024-09-02T07:00:00Z"}</script>'
    )
    web.add(
        "/2024/09/02/jsonld-lone-surrogate",
        article_html("Harbour deal", 53, extra_head=ld),
        content_type=HTML,
    )
    deep = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Deep", "x": '
        + "[" * 990
        + "]" * 990
        + "}</script>"
    )
    web.add(
        "/2024/09/02/jsonld-deep",
        article_html("A story under deep markup", 54, extra_head=deep),
        content_type=HTML,
    )
    for slug, seed in [
        ("emoji-title", 55),
        ("half-emoji-title", 56),
        ("plain-neighbour", 57),
        ("json-lone", 58),
        ("json-neighbour", 59),
    ]:
        web.add(
            f"/2024/09/02/{slug}",
            article_html(f"Story {slug.replace('-', ' ')}", seed),
            content_type=HTML,
        )
    web.add(
        "/unicode-pages.xml",
        feed(base, ["/2024/09/02/jsonld-lone-surrogate", "/2024/09/02/jsonld-deep"]),
        content_type=RSS,
    )


def build_boundary(web: HostileWeb, other_port: HostileWeb, internal: HostileWeb) -> None:
    base = web.base
    web.add("/2024/09/03/home-story", article_html("A story at home", 61), content_type=HTML)
    web.add_handler(
        "/2024/09/03/redirect-other-port",
        web.redirect(f"{other_port.base}/2024/09/03/moved-away", 302),
    )
    other_port.add("/2024/09/03/other-port", article_html("Never fetch me: other port", 62))
    other_port.add("/2024/09/03/moved-away", article_html("Never fetch me: moved", 63))
    internal.add("/2024/09/03/internal", article_html("Never fetch me: internal", 64))
    internal.add("/2024/09/03/intranet-story", article_html("An intranet story, allowed", 65))
    web.add(
        "/boundary-feed.xml",
        feed(
            base,
            [
                "/2024/09/03/home-story",
                f"{other_port.base}/2024/09/03/other-port",
                "/2024/09/03/redirect-other-port",
                f"{internal.base}/2024/09/03/internal",
            ],
        ),
        content_type=RSS,
    )
    web.add(
        "/intranet-feed.xml",
        feed(base, [f"{internal.base}/2024/09/03/intranet-story"]),
        content_type=RSS,
    )


def build_big_robots(web: HostileWeb, robots: HostileWeb) -> None:
    padding = b"# " + b"x" * 1000 + b"\n"
    body = b"User-agent: *\nDisallow: /\n" + padding * (11 * MB // len(padding))
    robots.add("/robots.txt", body, content_type="text/plain")
    robots.add("/2024/09/06/behind-big-robots", article_html("Disallowed by a big robots.txt", 66))
    robots.add("/section/", "<html><body>section</body></html>")
    web.add(
        "/bigrobots-feed.xml",
        feed(web.base, [f"{robots.base}/2024/09/06/behind-big-robots"]),
        content_type=RSS,
    )


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tmp = tmp_path_factory.mktemp("limits")
    main = HostileWeb()
    other_port = HostileWeb()
    internal = HostileWeb(
        "127.0.0.2", port=int(main.host.rsplit(":", 1)[1])
    )  # same port, another address
    robots = HostileWeb()
    webs = {"main": main, "other_port": other_port, "internal": internal, "robots": robots}
    main.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    build_headers(main)
    build_unicode(main)
    build_boundary(main, other_port, internal)
    build_big_robots(main, robots)
    for web in webs.values():
        web.start()
    b = main.base
    both = 'domains = ["127.0.0.1", "127.0.0.2"]'
    config = (
        _outlet("headers", f'feeds = ["{b}/headers-feed.xml"]')
        + _outlet(
            "unicode",
            f'feeds = ["{b}/unicode-rss.xml", "{b}/unicode-feed.json", "{b}/deep-feed.json", '
            f'"{b}/unicode-pages.xml"]',
        )
        + _outlet("boundary", f'feeds = ["{b}/boundary-feed.xml"]\n{both}')
        + _outlet(
            "intranet",
            f'feeds = ["{b}/intranet-feed.xml"]\n{both}\nallow_networks = ["127.0.0.2/32"]',
        )
        + _outlet(
            "bigrobots",
            f'feeds = ["{b}/bigrobots-feed.xml"]\nstart_urls = ["{robots.base}/section/"]',
        )
    )
    try:
        yield _crawl(tmp, config, webs)
    finally:
        for web in webs.values():
            web.stop()


def test_the_limits_crawl_succeeds_and_stays_small(limits: Hostile) -> None:
    assert limits.returncode == 0, limits.stderr[-3000:]
    # An endless header section went through this crawl: before the limit it took gigabytes.
    assert limits.maxrss_kb < 400 * 1024, f"peak RSS {limits.maxrss_kb} kB"
    assert rows(limits.db, "SELECT count(*) FROM crawl_runs WHERE status <> 'ok'") == [(0,)]


@pytest.mark.parametrize(
    "path, words",
    [
        ("/2024/09/01/header-flood", "response headers over 262144 bytes"),
        ("/2024/09/01/header-count", "response has over 200 header lines"),
    ],
)
def test_oversized_header_sections_are_too_large(limits: Hostile, path: str, words: str) -> None:
    skip, detail, status, article_id = limits.page("main", path)
    assert (skip, status, article_id) == ("too_large", None, None)
    assert words in detail


def test_forty_headers_are_an_ordinary_page(limits: Hostile) -> None:
    assert limits.page("main", "/2024/09/01/some-headers")[0] is None
    assert limits.run("headers")["skipped"].get("too_large") == 2


@pytest.mark.parametrize(
    "slug, title_has",
    [
        (
            "emoji-title",
            "Smile \U0001f600 at",
        ),  # a surrogate pair in character references: the emoji
        ("half-emoji-title", "Half a smile \ufffd only"),  # half a pair: replaced, the entry kept
        ("plain-neighbour", "A plain neighbour"),  # the other entries of the feed are not lost
        ("json-lone", "Lone \ufffd half"),  # a lone surrogate escape in a JSON Feed
        ("json-neighbour", "Neighbour"),
    ],
)
def test_invalid_unicode_in_a_feed_costs_neither_the_entry_nor_the_feed(
    limits: Hostile, slug: str, title_has: str
) -> None:
    path = f"/2024/09/02/{slug}"
    assert limits.page("main", path)[0] is None
    (feed_title,) = limits.article("main", path, "feed_title")
    assert title_has in feed_title


def test_a_lone_surrogate_in_json_ld_costs_no_page(limits: Hostile) -> None:
    assert limits.page("main", "/2024/09/02/jsonld-lone-surrogate")[0] is None
    (authors,) = limits.article("main", "/2024/09/02/jsonld-lone-surrogate", "authors")
    assert authors == ["Ana \ufffd"]


def test_deeply_nested_json_ld_falls_back_to_the_page(limits: Hostile) -> None:
    assert limits.page("main", "/2024/09/02/jsonld-deep")[0] is None
    (title,) = limits.article("main", "/2024/09/02/jsonld-deep", "title")
    assert title == "A story under deep markup"


def test_a_json_feed_nested_200k_deep_is_a_malformed_source(limits: Hostile) -> None:
    log = (limits.db.parent.parent / "crawl.log").read_text(errors="replace")
    assert "deep-feed.json unreadable" in log
    assert "Spider error" not in log and "RecursionError" not in log
    run = limits.run("unicode")
    assert run["status"] == "ok" and run["new"] == 7


def test_another_port_of_an_allowed_host_is_outside_the_site(limits: Hostile) -> None:
    assert limits.page("main", "/2024/09/03/home-story")[0] is None
    assert limits.webs["other_port"].paths() == [], "another port of 127.0.0.1 was fetched"
    assert limits.run("boundary")["skipped"]["filtered/offsite"] == 1
    skip, detail, _, _ = limits.page("main", "/2024/09/03/redirect-other-port")
    assert skip == "offsite_redirect" and "port" in detail


def test_loopback_and_private_addresses_are_refused_unless_allowed(limits: Hostile) -> None:
    internal = limits.webs["internal"]
    skip, detail, status, _ = _page(limits.db, f"{internal.base}/2024/09/03/internal")
    assert (skip, status) == ("address_refused", None)
    assert "127.0.0.2 is loopback" in detail and "allow_networks" in detail
    assert "/2024/09/03/internal" not in internal.paths(), "a byte was sent to a refused address"
    # The same address, allowed in the outlet's config: an intranet outlet works.
    assert _page(limits.db, f"{internal.base}/2024/09/03/intranet-story")[0] is None
    assert limits.run("intranet")["new"] == 1


def test_an_oversized_robots_txt_disallows_everything(limits: Hostile) -> None:
    robots = limits.webs["robots"]
    skip, detail, _, _ = _page(limits.db, f"{robots.base}/2024/09/06/behind-big-robots")
    assert skip == "robots_forbidden" and "over the download size limit" in detail
    assert robots.count("/2024/09/06/behind-big-robots") == 0, "fetched despite Disallow: /"


# -- a memory budget --------------------------------------------------------------------------


def test_a_crawl_over_its_memory_budget_is_stopped_and_recorded(tmp_path: Path) -> None:
    web = HostileWeb().start()
    try:
        web.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        web.add("/feed.xml", feed(web.base, ["/2024/09/08/a-story"]), content_type=RSS)
        web.add("/2024/09/08/a-story", article_html("A story", 67))
        result = _crawl(
            tmp_path,
            _outlet("budget", f'feeds = ["{web.base}/feed.xml"]'),
            {"main": web},
            MEMUSAGE_LIMIT_MB=1,
            MEMUSAGE_CHECK_INTERVAL_SECONDS=0.2,
        )
    finally:
        web.stop()
    assert result.returncode != 0
    run = _last_run(result.db, "budget")
    assert run["status"] == "failed" and run["message"] == "memusage_exceeded"


# -- sitemap indexes over the per-run budget --------------------------------------------------


MONTHS = [f"{2022 + i // 12}-{i % 12 + 1:02d}" for i in range(30)]  # 2022-01 .. 2024-06


@pytest.fixture(scope="module")
def big_index(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HostileWeb, Hostile, list[str], Hostile]]:
    tmp = tmp_path_factory.mktemp("index")
    web = HostileWeb()
    web.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    children = "".join(
        f"<sitemap><loc>{web.base}/sitemap-{m}.xml</loc><lastmod>{m}-28T00:00:00Z</lastmod></sitemap>\n"
        for m in MONTHS
    )  # oldest first, as archives list them
    web.add(
        "/sitemap-index.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex '
        f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{children}</sitemapindex>',
        content_type="application/xml",
    )
    for i, m in enumerate(MONTHS):
        web.add(
            f"/sitemap-{m}.xml",
            '<?xml version="1.0" encoding="UTF-8"?>\n<urlset '
            'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{web.base}/2024/09/07/story-of-{m}</loc></url></urlset>",
            content_type="application/xml",
        )
        web.add(f"/2024/09/07/story-of-{m}", article_html(f"The story of {m}", 100 + i))
    web.start()
    config = _outlet("index", f'sitemaps = ["{web.base}/sitemap-index.xml"]')
    try:
        first = _crawl(tmp, config, {"main": web})
        fetched_first = list(web.paths())
        second = _crawl(tmp, config, {"main": web})
        yield web, first, fetched_first, second
    finally:
        web.stop()


def test_a_big_sitemap_index_is_read_newest_first(
    big_index: tuple[HostileWeb, Hostile, list[str], Hostile],
) -> None:
    _, first, fetched_first, _ = big_index
    assert first.returncode == 0, first.stderr[-2000:]
    (skipped,) = rows(
        first.db,
        "SELECT skipped FROM crawl_runs WHERE outlet = 'index' ORDER BY started_at LIMIT 1",
    )[0]
    assert json.loads(skipped)["filtered/sitemaps_deferred"] == 10, "what was deferred is counted"
    read = {m for m in MONTHS if f"/sitemap-{m}.xml" in fetched_first}
    assert read == set(MONTHS[-20:]), "the 20 newest months, the newest included"
    archived = {t for (t,) in rows(first.db, "SELECT title FROM articles WHERE outlet = 'index'")}
    assert "The story of 2024-06" in archived


def test_deferred_child_sitemaps_are_read_by_the_next_run(
    big_index: tuple[HostileWeb, Hostile, list[str], Hostile],
) -> None:
    web, _, _, second = big_index
    assert second.returncode == 0, second.stderr[-2000:]
    assert all(web.count(f"/sitemap-{m}.xml") >= 1 for m in MONTHS), (
        "a child sitemap was never read"
    )
    archived = rows(second.db, "SELECT count(*) FROM articles WHERE outlet = 'index'")[0][0]
    assert archived == 30


# -- article patterns that backtrack ----------------------------------------------------------


@pytest.fixture(scope="module")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tmp = tmp_path_factory.mktemp("patterns")
    web = HostileWeb()
    web.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    crafted = "/2024/09/04/" + "a" * 40 + "!"
    web.add("/nested.xml", feed(web.base, [crafted, "/2024/09/04/story-a"]), content_type=RSS)
    web.add(
        "/alternation.xml",
        feed(web.base, ["/2024/09/05/" + "a" * 60 + "!", "/2024/09/05/story-aa"]),
        content_type=RSS,
    )
    web.add("/2024/09/04/story-a", article_html("A story that matches (a+)+$", 68))
    web.add("/2024/09/05/story-aa", article_html("A story that matches (a|aa)+$", 69))
    web.start()
    config = (
        f'\n[[outlet]]\nname = "nested"\nfeeds = ["{web.base}/nested.xml"]\narticle_pattern = "(a+)+$"\n'
        f'\n[[outlet]]\nname = "alternation"\nfeeds = ["{web.base}/alternation.xml"]\n'
        'article_pattern = "(a|aa)+$"\n'
    )
    try:
        yield _crawl(tmp, config, {"main": web})
    finally:
        web.stop()


def test_a_backtracking_pattern_does_not_hang_the_run(patterns: Hostile) -> None:
    assert patterns.returncode == 0, patterns.stderr[-2000:]
    assert patterns.seconds < 60, f"the crawl took {patterns.seconds:.0f}s"
    assert patterns.page("main", "/2024/09/04/story-a")[0] is None
    assert patterns.page("main", "/2024/09/05/story-aa")[0] is None


def test_the_url_that_made_a_pattern_time_out_is_recorded(patterns: Hostile) -> None:
    skip, detail, _, _ = patterns.page("main", "/2024/09/05/" + "a" * 60 + "!")
    assert skip == "pattern_timeout" and "(a|aa)+$" in detail
    assert patterns.run("alternation")["skipped"]["pattern_timeout"] == 1
