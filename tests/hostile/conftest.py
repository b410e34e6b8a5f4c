"""The hostile web, crawled once for the whole hostile suite.

One `mediawatch crawl` of several hostile outlets (each its own server, so each has its
own robots.txt) covers every page, server and feed case at once; the tests then assert
what a user would see in the archive. A second server on 127.0.0.2 is the offsite host:
nothing may ever reach it. The crawl runs under a wrapper that reports its peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MEDIAWATCH, REPO, rows
from tests.hostile.web import (
    MB,
    HostileWeb,
    article_html,
    big_page_chunks,
    billion_laughs,
    endless_chunks,
    gzip_bomb,
    million_url_sitemap,
)

# Short timeouts so failures cost seconds; everything else is the shipped configuration.
CRAWL_SETTINGS = {
    "DOWNLOAD_TIMEOUT": 3,
    "RETRY_TIMES": 1,
    "MEDIAWATCH_MAX_RETRY_AFTER": 5,
    "MEDIAWATCH_WORKERS": 0,
}
SECRET = "XXE-SECRET-7f3a9c"
MILLION_BUDGET = 25


def crawl_env(**extra: Any) -> dict[str, str]:
    return {**os.environ, "MEDIAWATCH_SCRAPY_SETTINGS": json.dumps({**CRAWL_SETTINGS, **extra})}


RSS_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(json.dumps({'rc': rc, 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def run_measured(*args: str, env: dict[str, str], timeout: float = 240) -> tuple[int, str, int]:
    """Run the mediawatch CLI; return (exit code, stderr, peak RSS in kB of it and its children)."""
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, str(MEDIAWATCH), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["rc"], proc.stderr, report["maxrss_kb"]


def feed(
    base: str,
    paths: list[str],
    *,
    dates: dict[str, str] | None = None,
    titles: dict[str, str] | None = None,
) -> str:
    items = []
    for p in paths:
        title = (titles or {}).get(p, p.rsplit("/", 1)[-1].replace("-", " "))
        date = (dates or {}).get(p, "Fri, 17 May 2024 06:30:00 GMT")
        link = p if p.startswith("http") else base + p
        items.append(
            f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Hostile</title>'
        f"<link>{base}/</link>{''.join(items)}</channel></rss>"
    )


@dataclass
class Hostile:
    db: Path
    config: Path
    returncode: int
    stderr: str
    maxrss_kb: int
    seconds: float
    webs: dict[str, HostileWeb] = field(default_factory=dict)
    offsite: HostileWeb | None = None

    def base(self, site: str) -> str:
        return self.webs[site].base

    def page(self, site: str, path: str) -> tuple[Any, ...]:
        """(skip_reason, detail, status, article_id) of the page first requested at this URL."""
        found = rows(
            self.db,
            "SELECT skip_reason, detail, status, article_id FROM pages WHERE url = ? "
            "ORDER BY fetched_at",
            [self.base(site) + path],
        )
        assert found, f"no page recorded for {site}{path}: lost without a word"
        return found[0]

    def article(self, site: str, path: str, columns: str = "title, text") -> tuple[Any, ...]:
        found = rows(
            self.db,
            f"SELECT {columns} FROM articles a JOIN pages p ON p.article_id = a.id WHERE p.url = ?",
            [self.base(site) + path],
        )
        assert found, f"{site}{path} was not archived"
        return found[0]

    def run(self, outlet: str) -> dict[str, Any]:
        (row,) = rows(
            self.db,
            "SELECT status, requests, responses, articles_new, skipped, errors, message "
            "FROM crawl_runs WHERE outlet = ?",
            [outlet],
        )
        return {
            "status": row[0],
            "requests": row[1],
            "responses": json.loads(row[2] or "{}"),
            "new": row[3],
            "skipped": json.loads(row[4] or "{}"),
            "errors": row[5],
            "message": row[6],
        }


# -- the sites --------------------------------------------------------------------------------


FR_TITLE = "Élections générales : le débat à Besançon"


def build_pages(web: HostileWeb) -> list[str]:
    """Pages that lie about themselves: charsets, size, type, emptiness, walls."""
    html = "text/html; charset=utf-8"
    fr = article_html(FR_TITLE, 11, lang="fr", charset=None)
    web.add("/2024/05/01/cp1252-as-utf8", fr.encode("cp1252"), content_type=html)
    web.add(
        "/2024/05/01/utf8-as-latin1",
        article_html(FR_TITLE + " (2)", 12, lang="fr", charset=None).encode(),
        content_type="text/html; charset=iso-8859-1",
    )
    web.add(
        "/2024/05/01/bom",
        b"\xef\xbb\xbf" + article_html(FR_TITLE + " (3)", 13, lang="fr", charset=None).encode(),
        content_type="text/html; charset=iso-8859-1",
    )
    broken = (
        article_html("Broken markup still carries a story", 14)
        .replace("</p>", "")
        .replace("<article>", "<article><div><table><tr><td><b><i>")
        .replace("</html>", "<div><span></p></td></html><<>")
    )
    web.add(
        "/2024/05/01/broken-html", broken[: len(broken) - 40] + "<p unclosed <<", content_type=html
    )
    web.add_handler(
        "/2024/05/01/fifty-mb",
        web.stream(big_page_chunks(50 * MB), {"Content-Type": html}, length=50 * MB),
    )
    web.add_handler(
        "/2024/05/01/fifty-mb-chunked", web.stream(big_page_chunks(50 * MB), {"Content-Type": html})
    )
    web.add_handler("/2024/05/01/endless", web.stream(endless_chunks(), {"Content-Type": html}))
    web.add(
        "/2024/05/01/gzip-bomb",
        gzip_bomb(),
        content_type=html,
        headers={"Content-Encoding": "gzip"},
    )
    web.add(
        "/2024/05/01/pdf-as-html",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nstream\n"
        + os.urandom(20000)
        + b"\nendstream\n%%EOF",
        content_type=html,
    )
    web.add(
        "/2024/05/01/png-as-html",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(30000),
        content_type=html,
    )
    web.add("/2024/05/01/empty", b"", content_type=html)
    web.add(
        "/2024/05/01/challenge",
        """<!DOCTYPE html><html><head><title>Just a moment...</title>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script></head>
<body><div id="cf-challenge-running">Checking if the site connection is secure</div>
<noscript>Enable JavaScript and cookies to continue</noscript></body></html>""",
        content_type=html,
    )
    web.add(
        "/2024/05/01/enable-js",
        """<!DOCTYPE html><html><head><title>Hostile Herald</title></head>
<body><noscript><p>Please enable JavaScript to continue using this site.</p></noscript>
<div id="root"></div><script src="/app.js"></script></body></html>""",
        content_type=html,
    )
    web.add(
        "/2024/05/01/cookie-wall",
        """<!DOCTYPE html><html><head><title>Before you continue</title></head>
<body><div class="consent"><h1>We value your privacy</h1><p>We and our 812 partners use cookies.
Accept all cookies to continue to the Hostile Herald, or subscribe for a cookie-free version.</p>
<button>Accept all</button><button>Subscribe</button></div></body></html>""",
        content_type=html,
    )
    web.add(
        "/2024/05/01/paywall-teaser",
        article_html(
            "Inside the harbour deal: what the documents show",
            15,
            paragraphs=2,
            jsonld={
                "@context": "https://schema.org",
                "@type": "NewsArticle",
                "isAccessibleForFree": False,
                "headline": "Inside the harbour deal: what the documents show",
                "datePublished": "2024-05-01T07:00:00Z",
                "hasPart": {
                    "@type": "WebPageElement",
                    "isAccessibleForFree": False,
                    "cssSelector": ".paid",
                },
            },
            extra_body='<div class="paywall paid">Subscribe to read the rest of this article.</div>',
        ),
        content_type=html,
    )
    with_nul = article_html("A story with one stray NUL byte", 17)
    web.add("/2024/05/01/nul-byte", with_nul.replace("</h1>", "</h1>\x00", 1), content_type=html)
    web.add(
        "/2024/05/01/good",
        article_html("A plain story about the river bridge", 16),
        content_type=html,
    )
    return [p for p in web.routes if p.startswith("/2024/")]


def build_server(web: HostileWeb, offsite: HostileWeb) -> list[str]:
    """A server that times out, hangs, resets, loops, refuses and rate-limits."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    ok = article_html("The story behind the flaky server", 21).encode()
    web.add_handler("/2024/06/01/timeout", web.slow(30))
    web.add_handler("/2024/06/01/silent", web.silent(60))
    web.add_handler("/2024/06/01/reset", web.reset())
    web.add_handler("/2024/06/01/loop-a", web.redirect("{base}/2024/06/01/loop-b"))
    web.add_handler("/2024/06/01/loop-b", web.redirect("{base}/2024/06/01/loop-a"))
    web.add_handler("/2024/06/01/self-loop", web.redirect("{base}/2024/06/01/self-loop"))
    for i in range(15):
        web.add_handler(
            f"/2024/06/01/chain-{i}", web.redirect(f"{{base}}/2024/06/01/chain-{i + 1}", 302)
        )
    web.add("/2024/06/01/chain-15", article_html("End of a very long chain", 22))
    for i in range(3):
        web.add_handler(
            f"/2024/06/01/moved-{i}", web.redirect(f"{{base}}/2024/06/01/moved-{i + 1}", 301)
        )
    web.add("/2024/06/01/moved-3", article_html("Moved three times and still here", 23))
    web.add_handler(
        "/2024/06/01/offsite-redirect", web.redirect(f"{offsite.base}/2024/06/01/stolen", 302)
    )
    web.add(
        "/2024/06/01/meta-refresh-offsite",
        f"""<html><head>
<meta http-equiv="refresh" content="0; url={offsite.base}/2024/06/01/refreshed"></head><body>Moved</body></html>""",
    )
    web.add("/2024/06/01/forbidden", "<html><body>Forbidden</body></html>", status=403)
    web.add("/2024/06/01/missing", "<html><body>Not found</body></html>", status=404)
    web.add("/2024/06/01/gone", "<html><body>Gone</body></html>", status=410)
    web.add_handler(
        "/2024/06/01/rate-once",
        web.sequence((429, b"slow down", {"Retry-After": "1", **html}), (200, ok, html)),
    )
    web.add_handler(
        "/2024/06/01/rate-always", web.sequence((429, b"slow down", {"Retry-After": "1", **html}))
    )
    web.add_handler(
        "/2024/06/01/rate-long",
        web.sequence((429, b"come back tomorrow", {"Retry-After": "3600", **html})),
    )
    for i in range(4):
        web.add(
            f"/2024/06/01/storm-500-{i}", "<html><body>Internal error</body></html>", status=500
        )
        web.add(f"/2024/06/01/storm-503-{i}", "<html><body>Unavailable</body></html>", status=503)
    web.add_handler(
        "/2024/06/01/flaky-503",
        web.sequence(
            (503, b"busy", html), (200, article_html("Second try works", 24).encode(), html)
        ),
    )
    offsite.add("/2024/06/01/stolen", article_html("Never fetch me", 90))
    offsite.add("/2024/06/01/refreshed", article_html("Never fetch me either", 91))
    offsite.add("/2024/06/01/linked", article_html("Nor me", 92))
    paths = [
        p
        for p in web.routes
        if p.startswith("/2024/")
        and "chain-" not in p
        and "moved-" not in p
        and p != "/2024/06/01/loop-b"
    ]
    return [*paths, "/2024/06/01/chain-0", "/2024/06/01/moved-0"]


def build_robots(web: HostileWeb) -> list[str]:
    web.add(
        "/robots.txt", "User-agent: *\nDisallow: /2024/07/private/\n", content_type="text/plain"
    )
    web.add("/2024/07/private/secret-plan", article_html("Private", 31))
    web.add("/2024/07/public/open-plan", article_html("The public plan for the new station", 32))
    return ["/2024/07/private/secret-plan", "/2024/07/public/open-plan"]


def build_slow_robots(web: HostileWeb) -> list[str]:
    web.add_handler("/robots.txt", web.slow(30, b"User-agent: *\nDisallow: /\n"))
    web.add(
        "/2024/07/02/behind-slow-robots", article_html("Archived even when robots.txt hangs", 33)
    )
    return ["/2024/07/02/behind-slow-robots"]


def build_feeds(web: HostileWeb, offsite: HostileWeb, secret_file: Path) -> None:
    """Feeds and sitemaps that are broken, explosive, self-referencing or lying about dates."""
    base = web.base
    xml = "application/xml"
    web.add(
        "/feeds/malformed.xml",
        "<?xml version='1.0'?><rss><channel><item><title>Unclosed <b><link>nowhere</item></rss",
        content_type=xml,
    )
    web.add_handler("/feeds/hangs.xml", web.silent(60))
    web.add("/sitemaps/gone.xml", "<html><body>gone</body></html>", status=404)
    web.add("/feeds/not-a-feed.xml", b"\x00\x01\x02 garbage \xff\xfe", content_type=xml)
    bomb_item = (
        f"<item><title>Bomb &lol9;</title><link>{base}/2024/08/01/after-the-bomb</link></item>"
    )
    web.add(
        "/feeds/bomb.xml",
        billion_laughs(
            "rss", f'<rss version="2.0"><channel><title>&lol9;</title>{bomb_item}</channel></rss>'
        ),
        content_type=xml,
    )
    web.add(
        "/feeds/xxe.xml",
        f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY file SYSTEM "file://{secret_file}"><!ENTITY net SYSTEM "{offsite.base}/xxe-feed">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Entity &file; &net;</title><link>{base}/2024/08/01/after-the-xxe</link>
<description>&file;</description></item></channel></rss>""",
        content_type=xml,
    )
    web.add(
        "/feeds/dates.xml",
        feed(
            base,
            ["/2024/08/01/wrong-date", "/2024/08/01/future-date"],
            dates={
                "/2024/08/01/wrong-date": "the thirty-second of Smarch",
                "/2024/08/01/future-date": "Fri, 01 Jan 2100 00:00:00 GMT",
            },
        ),
        content_type="application/rss+xml",
    )
    web.add(
        "/sitemaps/index.xml",
        f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/sitemaps/index.xml</loc></sitemap>
<sitemap><loc>{base}/sitemaps/index.xml?again=1</loc></sitemap>
<sitemap><loc>{base}/sitemaps/child.xml</loc></sitemap>
<sitemap><loc>{offsite.base}/sitemaps/offsite-child.xml</loc></sitemap>
</sitemapindex>""",
        content_type=xml,
    )
    web.add(
        "/sitemaps/child.xml",
        f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{base}/2024/08/01/from-the-child-sitemap</loc><lastmod>2100-01-01T00:00:00Z</lastmod></url>
<url><loc>{base}/2024/08/01/sitemap-bad-lastmod</loc><lastmod>2024-13-45T99:99:99Z</lastmod></url>
<url><loc>{offsite.base}/2024/08/01/offsite-in-sitemap</loc></url>
</urlset>""",
        content_type=xml,
    )
    web.add(
        "/sitemaps/bomb.xml",
        billion_laughs(
            "urlset",
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{base}/2024/08/01/&lol9;</loc></url></urlset>",
        ),
        content_type=xml,
    )
    web.add(
        "/sitemaps/xxe.xml",
        f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY file SYSTEM "file://{secret_file}"><!ENTITY net SYSTEM "{offsite.base}/xxe-sitemap">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{base}/2024/08/01/xxe-sitemap-&file;&net;</loc></url></urlset>""",
        content_type=xml,
    )
    web.add("/sitemaps/malformed.xml", "<urlset><url><loc>unterminated", content_type=xml)
    for slug, seed in [
        ("after-the-bomb", 41),
        ("after-the-xxe", 42),
        ("from-the-child-sitemap", 43),
        ("sitemap-bad-lastmod", 44),
    ]:
        web.add(f"/2024/08/01/{slug}", article_html(f"Story {slug.replace('-', ' ')}", seed))
    web.add("/2024/08/01/wrong-date", article_html("A feed date nobody can read", 45))
    web.add("/2024/08/01/future-date", article_html("A feed date from the future", 46, date=None))
    web.add(
        "/politique/",
        f"""<html><body><h1>Section</h1>
<a href="{offsite.base}/2024/06/01/linked">offsite story</a>
<a href="//{offsite.host}/2024/06/01/linked">protocol-relative offsite story</a>
<a href="/2024/08/01/after-the-bomb">bomb story</a></body></html>""",
    )


def build_million(web: HostileWeb) -> None:
    web.add_handler(
        "/sitemaps/million.xml.gz",
        web.stream(million_url_sitemap(web.base), {"Content-Type": "application/x-gzip"}),
    )
    for i in range(MILLION_BUDGET + 5):
        web.add(
            f"/2024/05/{i % 28 + 1:02d}/million-{i:07d}",
            article_html(f"Million story {i}", 1000 + i),
        )


def hostile_config(
    h: dict[str, HostileWeb],
    pages: list[str],
    server: list[str],
    robots: list[str],
    slow: list[str],
    tmp: Path,
) -> str:
    def outlet(name: str, web: HostileWeb, paths: list[str] | None = None, extra: str = "") -> str:
        feeds = f'feeds = ["{web.base}/feed.xml"]' if paths is not None else ""
        if paths is not None:
            web.add("/feed.xml", feed(web.base, paths), content_type="application/rss+xml")
        return f'\n[[outlet]]\nname = "{name}"\n{feeds}\narticle_pattern = "/20\\\\d\\\\d/"\nevery = "1h"\n{extra}\n'

    fw = h["feeds"]
    feed_list = ", ".join(
        f'"{fw.base}/feeds/{n}.xml"'
        for n in ("malformed", "not-a-feed", "bomb", "xxe", "dates", "hangs")
    )
    sm_list = ", ".join(
        f'"{fw.base}/sitemaps/{n}.xml"' for n in ("index", "bomb", "xxe", "malformed", "gone")
    )
    return (
        "[defaults]\ndelay = 0\nconcurrency = 8\n"
        + outlet("pages", h["pages"], pages)
        + outlet("server", h["server"], server, f'start_urls = ["{h["server"].base}/section/"]')
        + outlet("robots", h["robots"], robots)
        + outlet("slowrobots", h["slowrobots"], slow)
        + f'\n[[outlet]]\nname = "feeds"\nfeeds = [{feed_list}]\nsitemaps = [{sm_list}]\n'
        f'start_urls = ["{fw.base}/politique/"]\narticle_pattern = "/20\\\\d\\\\d/"\n'
    )


@pytest.fixture(scope="session")
def offsite_web() -> Iterator[HostileWeb]:
    web = HostileWeb("127.0.0.2").start()
    yield web
    web.stop()


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory, offsite_web: HostileWeb) -> Iterator[Hostile]:
    """Build every hostile site, crawl them all once through the CLI, hand over the result."""
    tmp = tmp_path_factory.mktemp("hostile")
    secret = tmp / "secret.txt"
    secret.write_text(SECRET + "\n")
    webs = {name: HostileWeb() for name in ("pages", "server", "robots", "slowrobots", "feeds")}
    pages = build_pages(webs["pages"])
    server = build_server(webs["server"], offsite_web)
    webs["server"].add(
        "/section/",
        f'<html><body><a href="{offsite_web.base}/2024/06/01/linked">x</a>'
        f'<a href="/2024/06/01/moved-0">moved</a></body></html>',
    )
    robots = build_robots(webs["robots"])
    slow = build_slow_robots(webs["slowrobots"])
    build_feeds(webs["feeds"], offsite_web, secret)
    for web in webs.values():
        web.start()
    config = tmp / "outlets.toml"
    config.write_text(hostile_config(webs, pages, server, robots, slow, tmp))
    db = tmp / "data" / "archive.duckdb"
    started = time.monotonic()
    try:
        rc, stderr, maxrss = run_measured(
            "crawl",
            "--config",
            str(config),
            "--db",
            str(db),
            "--timeout",
            "150",
            "--log",
            str(tmp / "crawl.log"),
            env=crawl_env(),
        )
        yield Hostile(db, config, rc, stderr, maxrss, time.monotonic() - started, webs, offsite_web)
    finally:
        for web in webs.values():
            web.stop()
