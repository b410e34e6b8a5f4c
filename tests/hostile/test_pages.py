"""Pages that lie about themselves: each ends archived correctly or recorded with why."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import FR_TITLE, Hostile, rows


def test_the_crawl_itself_succeeds_and_stays_small(hostile: Hostile) -> None:
    """One bad page must never fail the run: the CLI exits 0 and says what it skipped."""
    assert hostile.returncode == 0, hostile.stderr[-3000:]
    assert "pages: ok" in hostile.stderr
    # 50 MB pages, an endless body and a 1 GB gzip bomb all went through this crawl.
    assert hostile.maxrss_kb < 700 * 1024, f"peak RSS {hostile.maxrss_kb} kB"
    assert rows(hostile.db, "SELECT count(*) FROM crawl_runs WHERE status <> 'ok'") == [(0,)]


@pytest.mark.parametrize(
    "path, note",
    [
        (
            "/2024/05/01/cp1252-as-utf8",
            "declared utf-8 but the bytes are not UTF-8; decoded as cp1252",
        ),
        ("/2024/05/01/utf8-as-latin1", "declared cp1252 but the bytes are UTF-8"),
    ],
)
def test_a_wrong_charset_is_corrected_and_said(hostile: Hostile, path: str, note: str) -> None:
    skip, detail, status, _ = hostile.page("pages", path)
    assert (skip, status) == (None, 200)
    assert detail and note in detail
    title, text = hostile.article("pages", path)
    assert title.startswith(FR_TITLE)
    assert "\ufffd" not in text and "Ã" not in text, text[:200]
    assert "é" in text


def test_a_bom_wins_over_a_wrong_header(hostile: Hostile) -> None:
    skip, detail, _, _ = hostile.page("pages", "/2024/05/01/bom")
    assert skip is None and detail is None
    title, text = hostile.article("pages", "/2024/05/01/bom")
    assert title.startswith(FR_TITLE) and "\ufeff" not in text and "Ã" not in text


def test_broken_html_is_still_an_article(hostile: Hostile) -> None:
    assert hostile.page("pages", "/2024/05/01/broken-html")[0] is None
    title, text = hostile.article("pages", "/2024/05/01/broken-html", "title, text")
    assert title == "Broken markup still carries a story" and len(text.split()) > 200


def test_one_stray_nul_byte_does_not_make_an_article_binary(hostile: Hostile) -> None:
    assert hostile.page("pages", "/2024/05/01/nul-byte")[0] is None


@pytest.mark.parametrize(
    "path, words",
    [
        ("/2024/05/01/fifty-mb", "larger than download max size"),  # Content-Length says 50 MB
        (
            "/2024/05/01/fifty-mb-chunked",
            "larger than download max size",
        ),  # no length: cut at 10 MB
        ("/2024/05/01/endless", "larger than download max size"),  # a body that never ends
        ("/2024/05/01/gzip-bomb", "exceeded DOWNLOAD_MAXSIZE"),  # 1 MB that inflates to 1 GB
    ],
)
def test_oversized_bodies_are_too_large(hostile: Hostile, path: str, words: str) -> None:
    skip, detail, _, article_id = hostile.page("pages", path)
    assert (skip, article_id) == ("too_large", None)
    assert words in detail


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/2024/05/01/pdf-as-html", "not_html"),
        ("/2024/05/01/png-as-html", "not_html"),
        ("/2024/05/01/empty", "empty_extraction"),
        ("/2024/05/01/challenge", "bot_challenge"),
        ("/2024/05/01/enable-js", "bot_challenge"),
        ("/2024/05/01/cookie-wall", "bot_challenge"),
    ],
)
def test_pages_that_are_not_articles_are_recorded(hostile: Hostile, path: str, reason: str) -> None:
    skip, _, status, article_id = hostile.page("pages", path)
    assert (skip, status, article_id) == (reason, 200, None)


def test_a_paywall_teaser_is_archived_flagged(hostile: Hostile) -> None:
    assert hostile.page("pages", "/2024/05/01/paywall-teaser")[0] is None
    (paywalled,) = hostile.article("pages", "/2024/05/01/paywall-teaser", "paywalled")
    assert paywalled is True


def test_the_run_counts_agree_with_the_pages(hostile: Hostile) -> None:
    """crawl_runs is what `mediawatch status` shows: it must match the recorded pages."""
    run = hostile.run("pages")
    recorded = dict(
        rows(
            hostile.db,
            "SELECT skip_reason, count(*) FROM pages WHERE outlet = 'pages' "
            "AND skip_reason IS NOT NULL GROUP BY 1",
        )
    )
    assert run["skipped"] == recorded
    assert recorded["too_large"] == 4 and recorded["bot_challenge"] == 3
    archived = rows(hostile.db, "SELECT count(*) FROM articles WHERE outlet = 'pages'")[0][0]
    assert run["new"] == archived >= 6
