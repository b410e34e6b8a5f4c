"""mediawatch serve in a real browser: Debian's headless Chromium driven by Playwright.

A user searches from the header box, opens a hit, sees the removed promotion in place,
follows the outlet to its health row. Every request the browser makes stays on our server
(no CDN), and each step leaves a screenshot in tests/artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve import Server, build_serve_archive, start_server, stop

pytestmark = pytest.mark.slow
CHROMIUM = Path(os.environ.get("MEDIAWATCH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]  # else it calls the internet at start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(build_serve_archive(tmp_path_factory.mktemp("browser") / "archive.duckdb"))
    yield s
    stop(s)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} missing: install Chromium (apt-get install chromium, or make browser)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 760}, base_url=server.base)
    pg = context.new_page()
    pg.requests = []  # type: ignore[attr-defined]
    pg.on("request", lambda r: pg.requests.append(r.url))  # type: ignore[attr-defined]
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_search_then_article_then_outlet(page: Any, server: Server) -> None:
    page.goto("/")
    assert page.locator("ol.articles li").count() == 6
    shot(page, "latest")
    box = page.get_by_role("searchbox", name="Search the archive")
    box.fill("élection")
    box.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert page.locator("ol.hits li").count() == 3
    assert page.locator("ol.hits mark").first.inner_text().lower().startswith("élection")
    chart = page.locator("img.chart")
    chart.wait_for()
    page.wait_for_function("document.querySelector('img.chart').complete")
    assert chart.evaluate("img => img.naturalWidth") > 100  # the per-day chart was drawn
    shot(page, "search")

    page.get_by_role("link", name="Élections municipales : la gauche se rassemble").click()
    page.wait_for_url("**/articles/1")
    removed = page.locator(".removed")
    assert removed.count() == 1 and removed.is_visible()
    assert "fr.abonnez_vous" in removed.inner_text() and "subscription" in removed.inner_text()
    assert page.locator("dd.date-source").inner_text() == "jsonld"
    assert page.locator(".versions del").first.is_visible()  # the diff of the earlier version
    assert page.locator("table.copies").get_by_role("link", name="bbc").is_visible()
    shot(page, "article")

    page.locator("a.outlet").click()
    page.wait_for_url("**/outlets#outlet-lemonde")
    row = page.locator("#outlet-lemonde")
    assert "FAILING" in row.inner_text() and "http_404" in row.inner_text()
    assert "UNHEALTHY" in page.locator("#outlet-liberation").inner_text()
    shot(page, "outlets")
    assert all(u.startswith(server.base) for u in page.requests), (
        page.requests
    )  # no CDN, nothing outside


def test_filters_trends_and_sql_in_the_browser(page: Any, server: Server) -> None:
    page.goto("/")
    page.get_by_label("outlet").select_option("bbc")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?outlet=bbc*")
    assert page.locator("ol.articles li").count() == 2

    page.goto("/trends?q=municipales")
    assert page.locator("svg.chart polyline").count() == 2  # lemonde, liberation
    assert "lemonde (1)" in page.locator("table.numbers").inner_text()
    shot(page, "trends")

    page.goto("/sql")
    page.get_by_label("SQL").fill(
        "SELECT outlet, count(*) AS n FROM articles GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    page.get_by_role("button", name="Run").click()
    assert page.locator("table.result tbody tr").count() == 4
    assert page.locator("table.result tbody tr").first.inner_text().split() == ["bbc", "2"]
    shot(page, "sql")
    page.get_by_label("SQL").fill("DROP TABLE articles")
    page.get_by_role("button", name="Run").click()
    assert "refused" in page.get_by_role("alert").inner_text()
    assert all(u.startswith(server.base) for u in page.requests), page.requests


def test_raw_page_scripts_do_not_run(page: Any) -> None:
    page.goto("/articles/2/raw")
    assert page.locator("#raw").inner_text() == "stored page"
    assert page.title() != "pwned"  # the stored page's script was blocked by the sandbox
