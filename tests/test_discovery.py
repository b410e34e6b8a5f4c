"""Pure parts of discovery: sitemap streaming (safe against entity tricks), dates, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from crawler.discovery import iter_sitemap
from crawler.middlewares import retry_after_seconds
from crawler.spiders.outlet import parse_date

NEWS = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
<url><loc>https://a.example/2024/05/17/x</loc><lastmod>2024-05-17T10:00:00Z</lastmod>
  <image:image><image:loc>https://a.example/i.jpg</image:loc><image:title>Photo caption</image:title></image:image>
  <news:news><news:publication_date>2024-05-17T08:00:00+02:00</news:publication_date>
  <news:title>The real headline</news:title></news:news></url>
<url><loc>https://a.example/2024/05/18/y</loc></url>
</urlset>"""


def test_google_news_fields_are_kept_and_image_title_is_not_the_headline() -> None:
    entries = list(iter_sitemap(NEWS))
    assert entries[0] == (
        "url",
        {
            "loc": "https://a.example/2024/05/17/x",
            "lastmod": "2024-05-17T10:00:00Z",
            "publication_date": "2024-05-17T08:00:00+02:00",
            "title": "The real headline",
        },
    )
    assert entries[1] == ("url", {"loc": "https://a.example/2024/05/18/y"})


def test_sitemap_index_entries() -> None:
    body = (
        b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>"
    )
    assert list(iter_sitemap(body)) == [("sitemap", {"loc": "https://a.example/s1.xml"})]


def test_entities_are_never_expanded(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<urlset><url><loc>https://a.example/&x;</loc></url></urlset>"
    ).encode()
    for _, entry in iter_sitemap(xxe):
        assert "TOP-SECRET" not in entry.get("loc", "")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY a{i} "{"&a;" * 10 if i == 0 else f"&a{i - 1};" * 10}">'.encode()
            for i in range(9)
        )
        + b"]><urlset><url><loc>https://a.example/&a8;</loc></url></urlset>"
    )
    try:
        entries = list(iter_sitemap(laughs))
    except etree.XMLSyntaxError:
        entries = []
    assert all(len(e.get("loc", "")) < 1000 for _, e in entries)


def test_malformed_sitemap_raises_syntax_error() -> None:
    with pytest.raises(etree.XMLSyntaxError):
        list(iter_sitemap(b"<urlset><url><loc>https://a.example/x</loc></urlset"))


def test_dates() -> None:
    assert parse_date("Fri, 17 May 2024 06:30:00 GMT") == datetime(2024, 5, 17, 6, 30, tzinfo=UTC)
    assert parse_date("2024-05-17T08:30:00+02:00") == datetime(2024, 5, 17, 6, 30, tzinfo=UTC)
    assert parse_date("2024-05-17") == datetime(2024, 5, 17, tzinfo=UTC)
    assert parse_date("yesterday-ish") is None


def test_retry_after() -> None:
    assert retry_after_seconds("7") == 7
    assert (
        retry_after_seconds(
            "Wed, 21 Oct 2015 07:28:00 GMT",
            now=datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC).timestamp(),
        )
        == 30
    )
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# -- text that enters from feeds and JSON (issue 13) -------------------------------------------

RSS_EMOJI = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>Smile &#55357;&#56832; &#xD83D;&#xDE00; now</title><link>https://a.example/1</link></item>
<item><title>Half &#56832; smile</title><link>https://a.example/2</link></item>
<item><title>Plain</title><link>https://a.example/3</link></item></channel></rss>"""


def test_surrogate_character_references_cost_no_feed_entry() -> None:
    from crawler.discovery import feed_entries

    titles = [e["title"] for e in feed_entries(RSS_EMOJI, "https://a.example/feed")]
    assert titles == ["Smile \U0001f600 \U0001f600 now", "Half \ufffd smile", "Plain"]
    for title in titles:
        title.encode("utf-8")  # what the spool does with it


def test_lone_surrogate_escapes_in_json_are_replaced() -> None:
    from crawler.discovery import json_feed_entries
    from pipelines.jsontext import load_json

    body = b'{"items": [{"url": "https://a.example/1", "title": "A \\ud83d b \\ud83d\\ude00"}]}'
    assert json_feed_entries(body)[0]["title"] == "A \ufffd b \U0001f600"
    assert load_json('{"\\udc00key": ["\\ud800", {"x": "\\udfff"}]}') == {
        "\ufffdkey": ["\ufffd", {"x": "\ufffd"}]
    }


def test_json_nested_too_deep_is_unreadable_not_a_crash() -> None:
    from crawler.discovery import FeedError, json_feed_entries

    with pytest.raises(FeedError, match="too deep"):
        json_feed_entries(b'{"items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")


# -- child sitemaps of a big index ----------------------------------------------------------------


def _child(month: str | None, name: str) -> dict[str, str | None]:
    return {
        "loc": f"https://a.example/{name}.xml",
        "lastmod_sort": f"{month}-28T00:00:00+00:00" if month else None,
    }


def test_child_sitemaps_are_read_newest_first_and_the_rest_deferred() -> None:
    from crawler.discovery import order_child_sitemaps

    months = [f"2024-{m:02d}" for m in range(1, 13)]
    children = [_child(m, f"s-{m}") for m in months]  # oldest first
    chosen, deferred = order_child_sitemaps(children, set(), 4)
    assert chosen == [f"https://a.example/s-{m}.xml" for m in reversed(months[-4:])]
    assert len(deferred) == 8


def test_deferred_children_get_half_of_the_next_budgets() -> None:
    from crawler.discovery import order_child_sitemaps

    months = [f"2024-{m:02d}" for m in range(1, 13)]
    children = [_child(m, f"s-{m}") for m in months]
    fetched = {f"https://a.example/s-{m}.xml" for m in months[-4:]}  # what the first run read
    chosen, _ = order_child_sitemaps(children, fetched, 4)
    # the two newest again (they hold the new articles), then the newest never read
    assert chosen == [
        f"https://a.example/s-{m}.xml" for m in ("2024-12", "2024-11", "2024-08", "2024-07")
    ]


def test_children_without_lastmod_are_ordered_by_name() -> None:
    from crawler.discovery import order_child_sitemaps

    children = [_child(None, n) for n in ("sitemap-2023-11", "sitemap-2024-01", "sitemap-2023-12")]
    chosen, deferred = order_child_sitemaps(children, set(), 2)
    assert chosen == [
        "https://a.example/sitemap-2024-01.xml",
        "https://a.example/sitemap-2023-12.xml",
    ]
    assert deferred == ["https://a.example/sitemap-2023-11.xml"]


def test_a_pattern_match_that_backtracks_gives_up() -> None:
    import regex

    from crawler.discovery import pattern_search

    assert pattern_search(regex.compile("(a|aa)+$"), "https://a.example/" + "a" * 60 + "!") is None
    assert pattern_search(regex.compile("(a+)+$"), "https://a.example/" + "a" * 40 + "!") is False
    assert pattern_search(regex.compile("/20\\d\\d/"), "https://a.example/2024/x") is True


def test_surrogate_references_in_a_sitemap_cost_no_entry() -> None:
    """lxml refuses `&#55357;`: one emoji in a news:title lost every entry after it."""
    import io

    from crawler.discovery import CharRefRepairingReader

    entries = "".join(
        f"<url><loc>https://a.example/{i}</loc><news:news><news:title>Smile &#55357;&#56832; {i} &#56832;"
        "</news:title></news:news></url>"
        for i in range(500)
    )
    body = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        + entries.encode()
        + b"</urlset>"
    )

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:  # reads cut references anywhere
            return super().read(7)

    found = list(iter_sitemap(CharRefRepairingReader(Trickle(body))))
    assert len(found) == 500
    assert found[499][1]["title"] == "Smile \U0001f600 499 \ufffd"
