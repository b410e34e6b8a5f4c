"""URL identity: variants of one article meet on one key, different articles never do."""

from __future__ import annotations

import pytest

from pipelines.urls import article_key, canonical_url, registrable_domain, same_site, url_variants

BASE = "https://example.com/2024/05/story-slug"


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/2024/05/story-slug",
        "http://www.example.com/2024/05/story-slug/",
        "https://EXAMPLE.com:443/2024/05/story-slug",
        "https://www.example.com/2024/05/story-slug?utm_source=twitter&utm_medium=social",
        "https://www.example.com/2024/05/story-slug?fbclid=IwAR0abc",
        "https://www.example.com/2024/05/story-slug?gclid=xyz&xtor=RSS-3",
        "https://www.example.com/2024/05/story-slug?ref=homepage&mc_cid=1&mc_eid=2",
        "https://www.example.com/2024/05/story-slug?CMP=share_btn_tw&at_medium=rss",
        "https://www.example.com/2024/05/story-slug#comments",
        "https://www.example.com/2024/05/story-slug/amp/",
        "https://www.example.com/2024/05/story-slug/amp",
        "https://www.example.com/amp/2024/05/story-slug",
        "https://www.example.com/2024/05/story-slug?amp=1",
        "https://www.example.com/2024/05/story-slug?amp",
        "https://www.example.com/2024/05/story-slug?outputType=amp",
        "https://www.example.com/2024/05/story-slug.amp",
        "https://amp.example.com/2024/05/story-slug",
        "https://m.example.com/2024/05/story-slug",
        "https://mobile.example.com/2024/05/story-slug",
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/2024/05/story-slug",
        "https://www.google.com/amp/s/www.example.com/2024/05/story-slug",
    ],
)
def test_variants_share_the_key(variant: str) -> None:
    assert canonical_url(variant) == BASE


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/article?id=1", "https://example.com/article?id=2"),
        ("https://example.com/?p=101", "https://example.com/?p=102"),
        ("https://example.com/story?page=2", "https://example.com/story"),
        ("https://example.com/photos?gallery=2", "https://example.com/photos?gallery=3"),
        ("https://example.com/a/b", "https://example.com/a/c"),
        ("https://news.example.com/a", "https://sport.example.com/a"),
        ("https://example.com/a", "https://example.org/a"),
        ("https://m.com/a", "https://com/a"),
        ("https://example.com/reviews/amp/fender", "https://example.com/reviews/fender"),
    ],
)
def test_different_articles_stay_apart(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


def test_meaningful_params_kept_and_sorted() -> None:
    assert (
        canonical_url("https://x.com/a?page=2&id=7&utm_campaign=z") == "https://x.com/a?id=7&page=2"
    )


def test_amp_html_suffix_and_idempotence() -> None:
    url = canonical_url("https://www.bbc.co.uk/news/world-123.amp.html?utm_source=x")
    assert url == "https://bbc.co.uk/news/world-123.html"
    assert canonical_url(url) == url


def test_mobile_label_only_in_subdomain() -> None:
    assert canonical_url("https://m.bbc.co.uk/news/1") == "https://bbc.co.uk/news/1"
    assert canonical_url("https://m.com/news/1") == "https://m.com/news/1"


def test_non_http_left_alone() -> None:
    assert canonical_url("  mailto:a@b.c ") == "mailto:a@b.c"


def test_same_site() -> None:
    assert same_site("https://amp.theguardian.com/x", "https://www.theguardian.com/y")
    assert same_site("https://www.bbc.co.uk/a", "https://m.bbc.co.uk/b")
    assert not same_site("https://bbc.co.uk/a", "https://co.uk/b")
    assert not same_site("https://alice.blogspot.com/a", "https://bob.blogspot.com/a")
    assert registrable_domain("news.example.co.uk") == "example.co.uk"


ARTICLE_KEYS = {
    # name: (page URL, rel=canonical, og:url) -> (the article's key, the cross-site hint)
    "a same-site canonical is the key": (
        ("https://amp.example.com/2024/05/story-slug/amp?utm_source=g",
         "https://www.example.com/2024/05/story-slug", None),
        (BASE, None)),
    "og:url is used when there is no canonical": (
        ("https://example.com/?p=12", None, "https://www.example.com/2024/05/story-slug"),
        (BASE, None)),
    "a cross-site canonical is only a hint": (
        ("https://localpaper.com/news/ap-story-123?utm_source=feed",
         "https://apnews.com/article/abc", "https://apnews.com/article/abc"),
        ("https://localpaper.com/news/ap-story-123", "https://apnews.com/article/abc")),
    "a cross-site canonical falls back to a same-site og:url": (
        ("https://localpaper.com/news/1", "https://apnews.com/a",
         "https://www.localpaper.com/news/ap-1"),
        ("https://localpaper.com/news/ap-1", "https://apnews.com/a")),
    "a canonical pointing at the home page is ignored": (
        ("https://example.com/2024/05/story-slug", "https://example.com/", None), (BASE, None)),
    "a relative canonical is resolved": (
        ("https://example.com/x?id=3", "/2024/05/story-slug", None), (BASE, None)),
}  # fmt: skip


@pytest.mark.parametrize(("urls", "expected"), ARTICLE_KEYS.values(), ids=ARTICLE_KEYS.keys())
def test_article_key(
    urls: tuple[str, str | None, str | None], expected: tuple[str, str | None]
) -> None:
    assert article_key(*urls) == expected


def test_url_variants() -> None:
    got = url_variants(
        "https://www.example.com/2024/05/story-slug?utm_source=1",
        ["https://example.com/?p=12", "https://feedproxy.google.com/~r/x"],
        "https://example.com/2024/05/story-slug",
        "https://apnews.com/a",
    )
    assert got == [(BASE, "key"), ("https://example.com/?p=12", "redirect")]
