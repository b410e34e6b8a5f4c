"""Feeds and sitemaps that are broken, explosive, self-referencing or lying about dates;
plus what must never happen: an entity resolved, a request to another host."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.hostile.conftest import SECRET, Hostile, rows


def test_feed_run_survives_every_broken_source(hostile: Hostile) -> None:
    run = hostile.run("feeds")
    assert run["status"] == "ok"
    # malformed feed, non-feed bytes, malformed sitemap, sitemap entity bomb: each an error
    assert run["errors"] >= 4
    states = dict(
        rows(hostile.db, "SELECT url, last_status FROM http_state WHERE outlet = 'feeds'")
    )
    base = hostile.base("feeds")
    for name in (
        "feeds/malformed.xml",
        "feeds/not-a-feed.xml",
        "feeds/bomb.xml",
        "feeds/xxe.xml",
        "sitemaps/bomb.xml",
        "sitemaps/malformed.xml",
        "sitemaps/child.xml",
    ):
        assert states.get(f"{base}/{name}") == 200, f"{name} not recorded: {states}"


def test_a_source_that_hangs_or_is_gone_does_not_stop_the_others(hostile: Hostile) -> None:
    base = hostile.base("feeds")
    states = dict(
        rows(hostile.db, "SELECT url, last_status FROM http_state WHERE outlet = 'feeds'")
    )
    assert states[f"{base}/sitemaps/gone.xml"] == 404
    assert (
        f"{base}/feeds/hangs.xml" not in states
    )  # no answer, no validators to keep: counted in errors
    assert hostile.webs["feeds"].count("/feeds/hangs.xml") == 2, "retried once, then given up"
    assert hostile.run("feeds")["new"] >= 6


def test_entity_bombs_are_inert(hostile: Hostile) -> None:
    """Billion laughs in a feed: the item behind it is archived, nothing expanded."""
    assert hostile.page("feeds", "/2024/08/01/after-the-bomb")[0] is None
    (feed_title,) = hostile.article("feeds", "/2024/08/01/after-the-bomb", "feed_title")
    assert feed_title is None or "lollol" not in feed_title
    longest = rows(hostile.db, "SELECT max(length(coalesce(feed_title, ''))) FROM articles")[0][0]
    assert longest < 500


def test_external_entities_are_never_resolved(hostile: Hostile) -> None:
    assert hostile.page("feeds", "/2024/08/01/after-the-xxe")[0] is None
    leaked = rows(
        hostile.db,
        "SELECT count(*) FROM articles WHERE contains(coalesce(feed_title, '') || "
        "coalesce(title, '') || text, ?)",
        [SECRET],
    )
    assert leaked == [(0,)]
    assert rows(hostile.db, "SELECT count(*) FROM pages WHERE contains(url, ?)", [SECRET]) == [(0,)]
    assert hostile.offsite is not None
    assert not [p for p in hostile.offsite.paths() if "xxe" in p], "an external entity was fetched"


def test_a_sitemap_index_that_points_to_itself_is_read_once(hostile: Hostile) -> None:
    web = hostile.webs["feeds"]
    assert web.count("/sitemaps/index.xml") == 1
    assert web.count("/sitemaps/child.xml") == 1
    assert hostile.page("feeds", "/2024/08/01/from-the-child-sitemap")[0] is None


def test_unreadable_dates_are_dropped_not_guessed(hostile: Hostile) -> None:
    published, feed_published = hostile.article(
        "feeds", "/2024/08/01/wrong-date", "published_at, feed_published_at"
    )
    assert feed_published is None
    assert published == datetime(2024, 5, 17, 8, 0, tzinfo=UTC), "the page's own date"
    assert hostile.page("feeds", "/2024/08/01/sitemap-bad-lastmod")[0] is None


def test_future_dates_are_not_trusted(hostile: Hostile) -> None:
    """A feed date in 2100 on an undated page: neither stored as the feed's date nor used."""
    published, feed_published, source = hostile.article(
        "feeds", "/2024/08/01/future-date", "published_at, feed_published_at, date_source"
    )
    assert feed_published is None
    assert published == datetime(2024, 8, 1, tzinfo=UTC) and source == "url"
    modified = rows(hostile.db, "SELECT max(modified_at) FROM articles")[0][0]
    assert modified is None or modified.year < 2100, (
        "a sitemap lastmod in 2100 is no modification date"
    )


def test_no_request_ever_reaches_another_host(hostile: Hostile) -> None:
    """Links, feed entries, sitemap entries and children, redirects, meta refreshes and
    entities all pointed at 127.0.0.2: it must have seen nothing, not even robots.txt."""
    assert hostile.offsite is not None
    assert hostile.offsite.paths() == []
    run = hostile.run("feeds")
    assert (
        run["skipped"]["filtered/offsite"] >= 3
    )  # two section links, one sitemap entry, one child
