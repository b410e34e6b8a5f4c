"""Pure parts of discovery: sitemap streaming (safe against entity tricks), dates, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from crawler.middlewares import retry_after_seconds
from crawler.spiders.outlet import iter_sitemap, parse_date

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
    assert entries[0] == ("url", {"loc": "https://a.example/2024/05/17/x", "lastmod": "2024-05-17T10:00:00Z",
                                  "publication_date": "2024-05-17T08:00:00+02:00", "title": "The real headline"})
    assert entries[1] == ("url", {"loc": "https://a.example/2024/05/18/y"})


def test_sitemap_index_entries() -> None:
    body = (b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>")
    assert list(iter_sitemap(body)) == [("sitemap", {"loc": "https://a.example/s1.xml"})]


def test_entities_are_never_expanded(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<urlset><url><loc>https://a.example/&x;</loc></url></urlset>').encode()
    for _, entry in iter_sitemap(xxe):
        assert "TOP-SECRET" not in entry.get("loc", "")
    laughs = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        f'<!ENTITY a{i} "{"&a;" * 10 if i == 0 else f"&a{i - 1};" * 10}">'.encode() for i in range(9)
    ) + b']><urlset><url><loc>https://a.example/&a8;</loc></url></urlset>'
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
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 10, 21, 7, 27, 30,
                                                                             tzinfo=UTC).timestamp()) == 30
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
