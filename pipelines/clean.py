"""From fetched HTML to an archive record: the one cleaning path, shared by the crawl,
`mediawatch extract` and `mediawatch reprocess`, so all three give the same result."""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

from zlib_ng import gzip_ng

from archive.records import Article, Hints, PageItem, PageRecord, RemovedBlock
from pipelines.extract import EXTRACTOR_VERSION, extract_with_tree
from pipelines.fingerprint import content_hash, minhash_bands
from pipelines.promo import RULES_VERSION, paragraph_hash, strip_promotions
from pipelines.promo.recurrence import boundary_blocks
from pipelines.urls import article_key, canonical_url, same_site

PIPELINE_VERSION = f"{EXTRACTOR_VERSION}+promo-{RULES_VERSION}"

# page_kind from extract_article -> skip reason
_SKIP_KINDS = {
    "listing": "listing",
    "empty": "empty_extraction",
    "challenge": "bot_challenge",
    "not_html": "not_html",
}
MIN_WORDS = 40


def clean_article(
    html: str,
    url: str,
    hints: Hints | None = None,
    *,
    language_hint: str | None = None,
    outlet_rules: Any = None,
    boilerplate: frozenset[str] = frozenset(),
) -> Cleaned:
    """Extract and strip one page."""
    article, tree = extract_with_tree(html, url, hints, language_hint=language_hint)
    kind = article.get("page_kind") or "article"
    if kind != "article":
        return Cleaned(article, article, [], _SKIP_KINDS.get(kind, kind))
    # the extraction's own tree: the page is parsed once (trafilatura works on a copy)
    stripped, removed = strip_promotions(
        article, html, outlet_rules=outlet_rules, boilerplate=boilerplate, tree=tree
    )
    skip = None
    if not stripped.get("text", "").strip() or (
        stripped.get("word_count", 0) < MIN_WORDS and not stripped.get("paywalled")
    ):
        skip = "empty_extraction"
    return Cleaned(article, stripped, removed, skip)


class Cleaned(NamedTuple):
    extracted: Article  # before promotion stripping (boilerplate learning counts these)
    article: Article
    removed: list[RemovedBlock]
    skip_reason: str | None


def _record(item: PageItem) -> PageRecord:
    """What the spider saw of the page, without its HTML (the record keeps it gzipped)."""
    fields = {k: v for k, v in item.items() if k != "html"}
    return PageRecord(**fields)  # type: ignore[typeddict-item]


def unclean_record(item: PageItem, skip_reason: str, detail: str | None) -> PageRecord:
    """The record of a page that is not archived as an article: what the spider saw, and why."""
    record = _record(item)
    record.update({"skip_reason": skip_reason, "detail": detail})
    return record


def clean_page(
    item: PageItem,
    html: str,
    *,
    outlet_rules: Any = None,
    boilerplate: frozenset[str] = frozenset(),
) -> PageRecord:
    """A spool page record from a page item and its HTML (the HTML itself is kept, gzipped)."""
    record = _record(item)
    record["html_gz_b64"] = base64.b64encode(
        # zlib-ng: the same gzip, as small as zlib's level 6, in half its CPU (3 ms a page)
        gzip_ng.compress(html.encode("utf-8", "replace"), 6)
    ).decode("ascii")
    record["extractor_version"] = PIPELINE_VERSION
    url = record.get("final_url") or record["url"]
    try:
        cleaned = clean_article(
            html,
            url,
            record.get("hints"),
            language_hint=record.get("language_hint"),
            outlet_rules=outlet_rules,
            boilerplate=boilerplate,
        )
    except Exception as exc:  # a page that breaks the extractor is recorded, never fatal
        record.update(
            {"skip_reason": "extraction_error", "detail": f"{type(exc).__name__}: {exc}"[:500]}
        )
        return record
    article, removed, skip = cleaned.article, cleaned.removed, cleaned.skip_reason
    if skip:
        record.update({"skip_reason": skip, "detail": article.get("detail")})
        return record
    key, cross_site = article_key(url, article.get("canonical_url"), article.get("og_url"))
    seen = [
        record["url"],
        *record.get("redirect_urls", []),
        url,
        *record.get("hints", {}).get("seen_as", []),
    ]
    seen = [
        u for u in seen if u and same_site(u, url)
    ]  # a feed proxy's URL names no article of ours
    aliases = [canonical_url(u) for u in seen]
    record.update(
        {
            "article": article,
            "removed_blocks": removed,
            "key": key,
            "cross_site_canonical": cross_site,
            "url_aliases": sorted(set(aliases) - {key}),
            "seen_urls": sorted(set(seen) - set(aliases) - {key}),  # raw spellings, as found
            "content_hash": content_hash(article["text"]),
            "bands": minhash_bands(article["text"]),
            "para_hashes": [
                [paragraph_hash(b["text"]), b["text"][:300]]
                for b in boundary_blocks(cleaned.extracted)
            ],
        }
    )
    return record
