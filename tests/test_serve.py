"""mediawatch serve over HTTP: the real command in a subprocess on 127.0.0.1, a real archive.

What a user sees: the latest articles and their filters, ranked search with its per-day
count and the same downloads as `mediawatch search`, an article with its promotions in
place, its versions and its copies, outlet health, trends, the read-only SQL box, the
token, and an archive the daemon can still write while the app serves.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.db import writer
from tests.conftest import BACKENDS, MEDIAWATCH, built_backend, rows, run_cli
from tests.test_query import NOW, build_archive

OLD_TEXT = "Les élections municipales approchent.\n\nUn paragraphe retiré depuis."


def build_serve_archive(path: Path) -> Path:
    """test_query's archive, plus what the article and outlet pages show: an earlier
    version, the date's source, a raw page with a script, daemon state, an unhealthy outlet."""
    build_archive(path)
    with writer(path) as con:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO article_versions VALUES (1, 1, 'Municipales : la gauche hésite', ?, 'h1', ?, 1)",
            [OLD_TEXT, NOW - timedelta(days=2)],
        )
        con.execute("UPDATE articles SET version = 2, date_source = 'jsonld' WHERE id = 1")
        con.execute("UPDATE removed_blocks SET version = 2 WHERE article_id = 1")
        con.execute(
            "UPDATE pages SET html_gz = ? WHERE id = 2",
            [
                __import__("gzip").compress(
                    b"<html><body><p id=raw>stored page</p><script>document.title='pwned'</script></body></html>"
                )
            ],
        )
        con.execute(
            "INSERT INTO outlet_state (outlet, next_run_at, interval_seconds, consecutive_failures, healthy, "
            "health_reason, updated_at) VALUES ('lemonde', ?, 1800, 0, TRUE, NULL, ?), "
            "('liberation', ?, 3600, 3, FALSE, '3 failed runs in a row: feed answered 404', ?)",
            [NOW + timedelta(minutes=20), NOW, NOW + timedelta(hours=2), NOW],
        )
        con.execute("COMMIT")
    return path


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[str]
    db: str  # a file path or a lake URL

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def start_server(db: Path | str, *args: str) -> Server:
    """`mediawatch serve --port 0` as a user starts it; the address comes from its first line."""
    proc = subprocess.Popen(
        [str(MEDIAWATCH), "serve", "--port", "0", "--db", str(db), *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    if not match:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
    return Server(match.group(1), proc, str(db))


def stop(server: Server) -> None:
    server.proc.terminate()
    server.proc.wait(timeout=20)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The app over the archive, on each backend (the lake holds it migrated)."""
    with built_backend(request, tmp_path_factory.mktemp("serve"), build_serve_archive) as db:
        s = start_server(db)
        yield s
        stop(s)


def titles(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", t)
        for t in re.findall(r'class="title" href="/articles/\d+">(.*?)</a>', html)
    ]


def test_latest_articles_newest_first_and_filtered(server: Server) -> None:
    status, headers, html = server.get("/")
    assert status == 200
    # undated: placed by when it was first seen (a day ago), so first
    assert titles(html)[:3] == [
        "Weather update",
        "Wahlen in Frankreich",
        "Elections in France: the left unites",
    ]
    assert len(titles(html)) == 6
    assert (
        "script-src" not in headers["content-security-policy"]
    )  # default-src 'none': no script runs
    assert titles(server.get("/?outlet=bbc")[2]) == [
        "Weather update",
        "Elections in France: the left unites",
    ]
    assert titles(server.get("/?lang=de")[2]) == ["Wahlen in Frankreich"]
    assert titles(server.get("/?since=2026-11-29&until=2026-11-29")[2]) == [
        "Elections in France: the left unites",
        "Municipales : sondage à Paris",
        "Le prix du pain augmente",
    ]


def test_bad_filters_are_one_line_400(server: Server) -> None:
    status, _, html = server.get("/?outlet=lemond")
    assert status == 400 and "did you mean &#39;lemonde&#39;" in html
    status, _, html = server.get("/search?q=x&since=yesterday")
    assert status == 400 and "bad date" in html
    assert server.get("/articles/999")[0] == 404
    assert server.get("/nowhere")[0] == 404


def test_search_ranks_marks_counts_per_day_and_downloads_like_the_cli(server: Server) -> None:
    status, _, html = server.get("/search?q=%C3%A9lection&lang=fr")
    assert status == 200
    assert set(titles(html)) == {
        "Élections municipales : la gauche se rassemble",
        "Le prix du pain augmente",
        "Municipales : sondage à Paris",
    }
    assert "<mark>élection</mark>" in html or "<mark>élections</mark>" in html
    chart = re.search(r'<img class="chart" src="(/search/chart.svg[^"]+)"', html)
    assert chart
    status, headers, svg = server.get(chart.group(1).replace("&amp;", "&"))
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert "3 dated matches" in svg
    assert "<title>2026-11-28: 1</title>" in svg and "<title>2026-11-29: 2</title>" in svg
    downloads = {}
    for fmt in ("csv", "json"):
        _, headers, downloads[fmt] = server.get(f"/search.{fmt}?q=%C3%A9lection&lang=fr")
        assert headers["content-type"].startswith(
            f"{'text' if fmt == 'csv' else 'application'}/{fmt}"
        )
    cli = {
        fmt: run_cli(
            "search", "élection", "--lang", "fr", "--format", fmt, "--limit", "10000",
            "--db", server.db,
        ).stdout
        for fmt in ("csv", "json")
    }  # fmt: skip
    assert downloads["csv"].replace("\r\n", "\n") == cli["csv"]  # csv's \r\n; run_cli reads text
    assert json.loads(downloads["json"]) == json.loads(cli["json"])
    status, _, html = server.get(
        "/search?q=%22liste+commune%22"
    )  # syntax: the search_articles macro
    assert titles(html) == ["Élections municipales : la gauche se rassemble"]


def test_article_shows_promotions_in_place_versions_cluster_and_raw_page(server: Server) -> None:
    status, _, html = server.get("/articles/1")
    assert status == 200
    assert '<dd class="date-source">jsonld</dd>' in html
    removed = re.findall(
        r'<div class="removed" data-kind="(\w+)"><span class="why">removed: \w+ · rule <code>([\w.]+)</code>',
        html,
    )
    assert removed == [("subscription", "fr.abonnez_vous")]
    text = html[html.index('<article class="text">') : html.index("</article>")]
    assert text.index("Les électeurs voteront") < text.index(
        "Abonnez-vous dès maintenant"
    )  # at position 3, after both paragraphs
    assert "<del>Un paragraphe retiré depuis.</del>" in html
    assert "<del>Municipales : la gauche hésite</del>" in html
    assert re.search(
        r'<a href="/articles/4">bbc</a>.*?<td>\+1d 10h 30m</td>', html, re.S
    )  # the copy, 34 h 30 later
    status, headers, raw = server.get("/articles/2/raw")
    assert status == 200 and "stored page" in raw
    assert headers["content-security-policy"].startswith("sandbox")  # its script cannot run
    assert server.get("/articles/1/raw")[0] == 200


def test_outlets_show_health_and_why_next_run_activity_and_skips(server: Server) -> None:
    _, _, html = server.get("/outlets")
    lib = html[html.index('id="outlet-liberation"') :]
    lib = lib[: lib.index("</tr>")]
    assert "UNHEALTHY" in lib and "3 failed runs in a row: feed answered 404" in lib
    lemonde = html[html.index('id="outlet-lemonde"') :]
    lemonde = lemonde[: lemonde.index("</tr>")]
    assert "FAILING" in lemonde  # its last run (run2) failed
    assert "<code>http_404</code> 1" in lemonde and "<code>empty_extraction</code> 1" in lemonde
    assert (NOW + timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M") in lemonde


def test_trends_by_outlet_and_language_with_numbers(server: Server) -> None:
    _, _, html = server.get("/trends?q=municipales")
    assert "<polyline" in html
    assert "lemonde (1)" in html and "liberation (1)" in html
    _, _, body = server.get("/trends.csv?q=municipales&by=language")
    assert list(csv.reader(io.StringIO(body))) == [
        ["day", "language", "articles"],
        ["2026-11-28", "fr", "1"],
        ["2026-11-29", "fr", "1"],
    ]


def test_sql_box_reads_like_query_and_refuses_writes(server: Server) -> None:
    q = "/sql?sql=SELECT+outlet%2C+count(*)+AS+n+FROM+articles+WHERE+outlet+%3C%3E+%24x+GROUP+BY+1+ORDER+BY+1&param=x%3Dbbc"
    status, _, html = server.get(q)
    assert status == 200 and '<span class="rowcount">3 rows</span>' in html
    assert "<td>lemonde</td><td>2</td>" in html
    _, _, body = server.get(q.replace("/sql?", "/sql.csv?"))
    cli = run_cli(
        "query",
        "SELECT outlet, count(*) AS n FROM articles WHERE outlet <> $x GROUP BY 1 ORDER BY 1",
        "-p",
        "x=bbc",
        "--format",
        "csv",
        "--db",
        server.db,
    )
    assert body.replace("\r\n", "\n") == cli.stdout
    for sql in (
        "DELETE+FROM+articles",
        "COPY+articles+TO+%27%2Ftmp%2Fx.csv%27",
        "ATTACH+%27%2Ftmp%2Fy.duckdb%27",
    ):
        status, _, html = server.get(f"/sql?sql={sql}")
        assert status == 400 and "refused" in html
    assert rows(server.db, "SELECT count(*) FROM articles") == [(6,)]


def test_daemon_writes_while_the_app_serves(tmp_path: Path) -> None:
    """The app holds no lock between requests: a writer session gets in, and its article shows.
    (The file's lock: a lake's writers never wait for its readers.)"""
    server = start_server(build_serve_archive(tmp_path / "archive.duckdb"))
    server.get("/")
    with writer(server.db) as con:
        con.execute(
            "INSERT INTO articles (id, outlet, url, canonical_url, title, published_at, first_seen_at, "
            "last_seen_at) VALUES (50, 'bbc', 'u50', 'u50', 'Fresh from the daemon', ?, ?, ?)",
            [NOW, NOW, NOW],
        )
    try:
        assert titles(server.get("/")[2])[0] == "Fresh from the daemon"
    finally:
        stop(server)


def test_every_asset_is_served_by_mediawatch(server: Server) -> None:
    for path in (
        "/",
        "/search?q=pain",
        "/articles/1",
        "/outlets",
        "/trends?q=pain",
        "/sql?sql=SELECT+1",
    ):
        html = server.get(path)[2]
        refs = re.findall(r'<(?:link|script|img|iframe)[^>]+(?:src|href)="([^"]+)"', html)
        assert refs and all(r.startswith("/") for r in refs), (path, refs)
    status, headers, css = server.get("/static/style.css")
    assert status == 200 and "text/css" in headers["content-type"] and ".removed" in css


def test_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    db = build_archive(tmp_path / "archive.duckdb")
    out = subprocess.run(
        [str(MEDIAWATCH), "serve", "--host", "0.0.0.0", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: --host 0.0.0.0 is reachable beyond this machine: give --token (or MEDIAWATCH_SERVE_TOKEN)"
    ]
    missing = subprocess.run(
        [str(MEDIAWATCH), "serve", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    s = start_server(db, "--token", "s3cret-token")
    try:
        status, _, body = s.get("/")
        assert status == 401 and "token" in body
        assert s.get("/", {"Authorization": "Bearer wrong-token"})[0] == 401
        assert s.get("/", {"Authorization": "Bearer s3cret-token"})[0] == 200
        status, headers, _ = s.get("/search?q=pain&token=s3cret-token")
        assert status == 303 and headers["location"] == "/search?q=pain"
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"]
        assert s.get("/search?q=pain", {"Cookie": cookie})[0] == 200
    finally:
        stop(s)


def test_a_long_query_is_stopped_so_the_daemon_can_write(tmp_path: Path) -> None:
    """A heavy statement in the SQL box must not keep the daemon out: it is interrupted after
    --query-timeout, says so in one line, and the archive is free at once."""
    import time

    db = build_archive(tmp_path / "archive.duckdb")
    s = start_server(db, "--query-timeout", "1")
    heavy = "SELECT+count(*)+FROM+range(1000000000000)"
    try:
        for path in (f"/sql?sql={heavy}", f"/sql.csv?sql={heavy}"):
            t0 = time.monotonic()
            status, _, html = s.get(path)
            assert status == 400 and "stopped after 1 s so that the daemon can write" in html
            assert time.monotonic() - t0 < 10
            with writer(db) as con:  # gets in right away
                con.execute("UPDATE articles SET title = title WHERE id = 1")
    finally:
        stop(s)
