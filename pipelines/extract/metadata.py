"""Page metadata from JSON-LD, meta tags, <time> and the URL, with where each date came from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from lxml.html import HtmlElement

from archive.dates import iso_date
from archive.records import Hints
from pipelines.extract.common import ARTICLE_TYPES, LISTING_TYPES, LOG, _clean
from pipelines.jsontext import load_json

_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:[/_.-]|$)")


_URL_DATE_COMPACT = re.compile(r"/((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])/")


_URL_DATE_MONTH = re.compile(
    r"/((?:19|20)\d{2})/(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*/(\d{1,2})/", re.I
)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


_META_PUBLISHED = (
    "article:published_time", "og:article:published_time", "og:published_time",
    "datepublished", "publishdate", "publish-date", "publish_date", "pubdate",
    "article.published", "dc.date.issued", "dcterms.issued", "dc.date", "dcterms.date",
    "date", "sailthru.date", "parsely-pub-date", "cxenseparse:recs:publishtime",
    "article_date_original", "originalpublicationdate", "citation_publication_date",
)  # fmt: skip


_META_MODIFIED = (
    "article:modified_time", "og:article:modified_time", "og:updated_time", "datemodified",
    "article.updated", "dcterms.modified", "dc.date.modified", "last-modified", "lastmod",
    "revised",
)  # fmt: skip


_ISO3 = {"fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "eng": "en", "spa": "es",
         "ita": "it", "por": "pt", "nld": "nl", "dut": "nl", "rus": "ru", "pol": "pl",
         "ara": "ar", "zho": "zh", "chi": "zh", "jpn": "ja", "tur": "tr", "ukr": "uk"}  # fmt: skip


def parse_date(value: Any, now: datetime | None = None) -> str | None:
    """A plausible, timezone-aware ISO 8601 string or None (`archive.dates.iso_date`: the
    rule every stage shares)."""
    return iso_date(value, now)


def url_date(url: str) -> str | None:
    """Publication day from a URL path like /2024/05/17/, /20240517/ or /2019/nov/18/
    (midnight UTC), or None."""
    m = _URL_DATE.search(url or "") or _URL_DATE_COMPACT.search(url or "")
    try:
        if m:
            return parse_date(datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC))
        m = _URL_DATE_MONTH.search(url or "")
        if m:
            month = _MONTHS.index(m[2].lower()[:3]) + 1
            return parse_date(datetime(int(m[1]), month, int(m[3]), tzinfo=UTC))
    except ValueError:
        return None
    return None


def _language(value: str | None) -> str | None:
    """ISO 639-1 primary subtag from 'fr-FR', 'fr_FR', 'fra', 'French' is not guessed."""
    if not value or not isinstance(value, str):
        return None
    primary = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
    if len(primary) == 2 and primary.isalpha():
        return primary
    return _ISO3.get(primary)


def _iter_jsonld(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON object found in ld+json scripts, flattened through lists and @graph."""
    for script in tree.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        raw = (script.text or "").strip()
        if not raw:
            continue
        raw = (
            re.sub(r"^\s*(?:<!--|//\s*<!\[CDATA\[)|(?:-->|//\s*\]\]>)\s*$", "", raw)
            .strip()
            .rstrip(";")
        )
        try:
            data = load_json(raw, strict=False)  # surrogates repaired; too deep is ValueError
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                if "@graph" in item:
                    stack.extend(
                        item["@graph"] if isinstance(item["@graph"], list) else [item["@graph"]]
                    )
                yield item
                main = item.get("mainEntity")
                if isinstance(main, (dict, list)):
                    stack.append(main)


def _types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type")
    items = t if isinstance(t, list) else [t]
    return {str(x).rsplit("/", 1)[-1].lower() for x in items if x}


def _names(value: Any) -> list[str]:
    """Person/Organization names from a schema.org value (str, dict, list)."""
    out: list[str] = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            name = v.get("name")
            if isinstance(name, str):
                out.append(name)
            elif isinstance(name, list):
                out.extend(n for n in name if isinstance(n, str))
    return [n for n in (_clean(x) for x in out) if n]


def _image(value: Any) -> str | None:
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, dict):
            u = v.get("url") or v.get("contentUrl")
            if isinstance(u, str) and u.strip():
                return u.strip()
    return None


def _is_false(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    return isinstance(value, str) and value.strip().lower() in {"false", "no", "0"}


def _meta_map(tree: HtmlElement) -> dict[str, list[str]]:
    """meta name/property/itemprop/http-equiv (lowercased) -> contents in page order."""
    out: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        content = meta.get("content")
        if content is None or not content.strip():
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = meta.get(attr)
            if key:
                out.setdefault(key.strip().lower(), []).append(content.strip())
    return out


def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    for k in keys:
        for v in meta.get(k, ()):
            c = _clean(v)
            if c:
                return c
    return None


def _split_tags(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in items:
        if isinstance(v, str):
            out.extend(p for p in re.split(r"[,;|]", v))
    return [t for t in (_clean(x) for x in out) if t]


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        k = x.casefold()
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


_BYLINE_PREFIX = re.compile(r"^(?:by|par|von|por|di|door|de)\s+", re.I)


def _authors(raw: list[str]) -> list[str]:
    out: list[str] = []
    for a in raw:
        if a.startswith(("http://", "https://")):
            continue
        a = _BYLINE_PREFIX.sub("", a).strip(" ,;")
        out.extend(
            x.strip() for x in re.split(r"\s*(?:,|;|\||\band\b|\bet\b|\bund\b|\by\b|&)\s*", a)
        )
    # a fragment with digits is a date or time glued to the byline ("Nov 18, 2019 at 9:24")
    return _dedupe(x for x in out if 1 < len(x) <= 80 and not any(c.isdigit() for c in x))


def _metadata(tree: HtmlElement, url: str) -> dict[str, Any]:
    """All page metadata, plus a few raw signals (date candidates, markup flags)."""
    meta = _meta_map(tree)
    ld_article: dict[str, Any] | None = None
    ld_all = list(_iter_jsonld(tree))
    paywalled = False
    ld_types: set[str] = set()
    publisher: str | None = None
    for obj in ld_all:
        types = _types(obj)
        ld_types |= types
        if types & ARTICLE_TYPES and ld_article is None:
            ld_article = obj
        if types & (ARTICLE_TYPES | {"webpage"}):
            if _is_false(obj.get("isAccessibleForFree")):
                paywalled = True
            parts = obj.get("hasPart")
            for part in parts if isinstance(parts, list) else [parts]:
                if isinstance(part, dict) and _is_false(part.get("isAccessibleForFree")):
                    paywalled = True
        if types & {"website", "organization", "newsmediaorganization"} and publisher is None:
            publisher = _clean(obj.get("name"))
    ld = ld_article or {}
    publisher = next(iter(_names(ld.get("publisher"))), publisher)

    # microdata paywall flag
    for el in tree.xpath('//*[@itemprop="isAccessibleForFree"]'):
        if _is_false(el.get("content") or el.text_content()):
            paywalled = True

    site_name = _first(meta, "og:site_name", "application-name", "publisher") or publisher
    title = (
        _first(meta, "og:title")
        or _clean(ld.get("headline"))
        or _first(meta, "twitter:title", "dc.title", "parsely-title", "sailthru.title")
    )
    if not title:
        h1s = [_clean(h.text_content()) for h in tree.iter("h1")]
        h1s = [h for h in h1s if h]
        if len(h1s) == 1:
            title = h1s[0]
    if not title:
        t = tree.find(".//title")
        title = _clean(t.text_content()) if t is not None else None
    if title and site_name:
        for sep in (" | ", " - ", " – ", " — ", " :: ", " · "):
            suffix = sep + site_name
            if title.endswith(suffix) and len(title) > len(suffix) + 5:
                title = title[: -len(suffix)].strip()

    authors_raw = _names(ld.get("author")) or [
        a for k in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author", "byl")
        for a in meta.get(k, ())
    ]  # fmt: skip
    if not authors_raw:
        authors_raw = [
            t for t in (_clean(el.text_content()) for el in tree.xpath(
                '//*[@rel="author" or @itemprop="author"][not(ancestor::*[@itemprop="author"])]'
            )[:5]) if t
        ]  # fmt: skip

    pub_candidates: list[tuple[str, Any]] = []
    pub_candidates += [
        ("jsonld", obj["datePublished"])
        for obj in [ld, *ld_all]  # the article first, then e.g. a WebPage carrying the date
        if isinstance(obj.get("datePublished"), str) and _types(obj) & (ARTICLE_TYPES | {"webpage"})
    ]
    pub_candidates += [("meta", v) for k in _META_PUBLISHED for v in meta.get(k, ())]
    times = tree.xpath(
        '//time[@datetime][@itemprop="datePublished" or @pubdate or contains(@class,"publish")]/@datetime'
        '|//*[@itemprop="datePublished"][not(self::meta)]/@datetime'
    ) or tree.xpath("//article//time[@datetime]/@datetime")
    pub_candidates += [("meta", v) for v in times[:3]]
    mod_candidates: list[Any] = []
    mod_candidates += [
        obj["dateModified"]
        for obj in [ld, *ld_all]
        if isinstance(obj.get("dateModified"), str) and _types(obj) & (ARTICLE_TYPES | {"webpage"})
    ]
    mod_candidates += [v for k in _META_MODIFIED for v in meta.get(k, ())]

    html_el = tree if tree.tag == "html" else tree.find(".//html")
    lang_sources = [
        html_el.get("lang") if html_el is not None else None,
        html_el.get("{http://www.w3.org/XML/1998/namespace}lang") if html_el is not None else None,
        _first(meta, "content-language", "language", "dc.language", "og:locale"),
        _clean(ld.get("inLanguage")) if isinstance(ld.get("inLanguage"), (str, list)) else None,
    ]
    language = next((lang for lang in (_language(s) for s in lang_sources) if lang), None)

    tags = _dedupe(
        [t for v in meta.get("article:tag", ()) for t in _split_tags(v)]
        or _split_tags(ld.get("keywords"))
        or _split_tags(_first(meta, "news_keywords", "keywords", "parsely-tags"))
    )
    section = _first(meta, "article:section", "section", "parsely-section") or _clean(
        ld.get("articleSection")
    )
    image = _first(
        meta,
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
    ) or _image(ld.get("image"))
    canonical = next(
        (
            link.get("href").strip()
            for link in tree.iter("link")
            if "canonical" in (link.get("rel") or "").lower().split()
            and (link.get("href") or "").strip()
        ),
        None,
    )
    og_url = _first(meta, "og:url")

    def absolute(u: str | None) -> str | None:
        if not u:
            return None
        try:
            return urljoin(url or "", u.strip())
        except ValueError:
            return None

    og_type = (_first(meta, "og:type") or "").lower()
    has_article_markup = bool(
        ld_article
        or og_type in {"article", "news", "newsarticle", "blogposting"}
        or meta.get("article:published_time")
        or tree.xpath('//*[contains(@itemtype,"Article") or contains(@itemtype,"BlogPosting")]')
    )
    return {
        "title": title,
        "authors": _authors(authors_raw),
        "description": _first(
            meta, "og:description", "description", "twitter:description", "dc.description"
        )
        or _clean(ld.get("description")),
        "section": section,
        "tags": [t for t in tags if not t.startswith("@") and len(t) <= 100][:50],
        "image_url": absolute(image),
        "canonical_url": absolute(canonical),
        "og_url": absolute(og_url),
        "site_name": site_name,
        "language": language,
        "paywalled": paywalled,
        "_pub": pub_candidates,
        "_mod": mod_candidates,
        "_article_markup": has_article_markup,
        "_listing_markup": bool(ld_types & LISTING_TYPES) and not ld_article,
        "_og_type": og_type,
    }


def _pick_dates(
    md: dict[str, Any], tree: HtmlElement | None, url: str, hints: Hints | None
) -> tuple[str | None, str | None, str | None]:
    """(published_at, modified_at, date_source): page markup first, then the feed or
    sitemap hint, then the URL, then htmldate (the slowest, least certain)."""
    hints = hints or {}
    published = source = None
    for src, value in md["_pub"]:
        published = parse_date(value)
        if published:
            source = src
            break
    if not published and hints.get("published_at") and hints.get("source") in ("feed", "sitemap"):
        published = parse_date(hints["published_at"])
        source = hints["source"] if published else None
    if not published:
        published = url_date(url)
        source = "url" if published else None
    if not published and tree is not None:
        published = _htmldate(tree, url)
        source = "htmldate" if published else None
    modified = next((d for d in (parse_date(v) for v in md["_mod"]) if d), None)
    if not modified and hints.get("lastmod"):
        modified = parse_date(hints["lastmod"])
    return published, modified, source


def _htmldate(tree: HtmlElement, url: str) -> str | None:
    try:
        from htmldate import find_date

        found = find_date(
            tree, extensive_search=False, original_date=True, url=url or None,
            outputformat="%Y-%m-%dT%H:%M:%S",
        )  # fmt: skip
    except Exception:  # htmldate on hostile markup: a missing date is not an error
        LOG.debug("htmldate failed on %s", url, exc_info=True)
        return None
    return parse_date(found) if found else None
