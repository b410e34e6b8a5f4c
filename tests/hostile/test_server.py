"""A server that times out, hangs, resets, loops, refuses and rate-limits: every article URL
ends archived or recorded with its reason, and the run says how it went."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import Hostile, rows


@pytest.mark.parametrize(
    "path, words",
    [
        ("/2024/06/01/timeout", "took longer than 3.0 seconds"),  # headers only after 30 s
        ("/2024/06/01/silent", "took longer than 3.0 seconds"),  # accepts, never answers
        ("/2024/06/01/reset", "ConnectionLost"),  # RST instead of an answer
        ("/2024/06/01/loop-a", "max redirections reached"),  # 301 a -> b -> a ...
        ("/2024/06/01/self-loop", "max redirections reached"),  # 301 to itself
        ("/2024/06/01/chain-0", "max redirections reached"),  # 15 hops, over REDIRECT_MAX_TIMES
    ],
)
def test_transport_failures_are_download_errors(hostile: Hostile, path: str, words: str) -> None:
    skip, detail, status, article_id = hostile.page("server", path)
    assert (skip, status, article_id) == ("download_error", None, None)
    assert words in detail


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/2024/06/01/forbidden", "http_403"),
        ("/2024/06/01/missing", "http_404"),
        ("/2024/06/01/gone", "http_410"),
        *[(f"/2024/06/01/storm-500-{i}", "http_500") for i in range(4)],
        *[(f"/2024/06/01/storm-503-{i}", "http_503") for i in range(4)],
    ],
)
def test_error_statuses_are_recorded(hostile: Hostile, path: str, reason: str) -> None:
    skip, _, status, article_id = hostile.page("server", path)
    assert (skip, status, article_id) == (reason, int(reason[5:]), None)


def test_server_errors_are_retried_a_bounded_number_of_times(hostile: Hostile) -> None:
    web = hostile.webs["server"]
    tries = [web.count(f"/2024/06/01/storm-500-{i}") for i in range(4)]
    assert all(1 <= n <= 2 for n in tries), f"RETRY_TIMES=1: at most two tries, got {tries}"
    assert hostile.page("server", "/2024/06/01/flaky-503")[0] is None, (
        "a 503 then a 200 is archived"
    )


def test_429_waits_for_retry_after_then_archives(hostile: Hostile) -> None:
    assert hostile.page("server", "/2024/06/01/rate-once")[0] is None
    assert hostile.webs["server"].count("/2024/06/01/rate-once") == 2


@pytest.mark.parametrize(
    "path, words, tries",
    [
        ("/2024/06/01/rate-always", "Retry-After 1s, try 4", 4),  # MAX_TRIES waits, then gives up
        ("/2024/06/01/rate-long", "Retry-After 3600s, try 1", 1),  # longer than we wait: at once
    ],
)
def test_429_storms_end_rate_limited(hostile: Hostile, path: str, words: str, tries: int) -> None:
    skip, detail, _, _ = hostile.page("server", path)
    assert skip == "rate_limited" and words in detail
    assert hostile.webs["server"].count(path) == tries


def test_redirects_are_followed_and_remembered(hostile: Hostile) -> None:
    assert hostile.page("server", "/2024/06/01/moved-0")[0] is None
    base = hostile.base("server").replace("http://", "https://")
    (aid,) = hostile.article("server", "/2024/06/01/moved-0", "a.id")
    urls = {
        u for (u,) in rows(hostile.db, "SELECT url FROM article_urls WHERE article_id = ?", [aid])
    }
    assert {f"{base}/2024/06/01/moved-{i}" for i in range(4)} <= urls


def test_redirects_off_the_domains_are_recorded_not_followed(hostile: Hostile) -> None:
    skip, detail, _, _ = hostile.page("server", "/2024/06/01/offsite-redirect")
    assert (
        skip == "offsite_redirect"
        and hostile.offsite is not None
        and hostile.offsite.host in detail
    )
    skip, detail, _, _ = hostile.page("server", "/2024/06/01/meta-refresh-offsite")
    assert skip == "offsite_redirect" and "refreshed" in detail


def test_the_server_run_is_ok_with_its_errors_counted(hostile: Hostile) -> None:
    run = hostile.run("server")
    assert run["status"] == "ok" and run["new"] == 3  # flaky-503, rate-once, moved-0
    assert run["errors"] >= 6
    recorded = dict(
        rows(
            hostile.db,
            "SELECT skip_reason, count(*) FROM pages WHERE outlet = 'server' "
            "AND skip_reason IS NOT NULL GROUP BY 1",
        )
    )
    assert {k: v for k, v in run["skipped"].items() if not k.startswith("filtered/")} == recorded
    assert run["skipped"]["filtered/offsite"] == 1
    assert run["responses"]["429"] >= 5 and 4 <= run["responses"]["500"] <= 8


def test_robots_txt_forbids(hostile: Hostile) -> None:
    skip, detail, _, _ = hostile.page("robots", "/2024/07/private/secret-plan")
    assert skip == "robots_forbidden" and "robots.txt" in detail
    assert hostile.webs["robots"].count("/2024/07/private/secret-plan") == 0, "never fetched"
    assert hostile.page("robots", "/2024/07/public/open-plan")[0] is None


def test_a_robots_txt_that_times_out_does_not_stop_the_outlet(hostile: Hostile) -> None:
    """Scrapy treats an unreachable robots.txt as allowing all (so do most crawlers)."""
    assert hostile.page("slowrobots", "/2024/07/02/behind-slow-robots")[0] is None
    run = hostile.run("slowrobots")
    assert run["status"] == "ok" and run["new"] == 1 and run["errors"] >= 1
