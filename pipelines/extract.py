"""Extraction stage: one fetched HTML page -> one *Article* dict (docs/ARCHITECTURE.md).

Pure function, no Scrapy types. The body comes from trafilatura (XML output, so block
kinds and link text survive); the metadata is read here from JSON-LD, meta tags and
``<time>`` because trafilatura's own metadata pass costs about as much as the text
extraction and does not say *where* a date came from (we store date provenance).
``extract_article`` never raises: broken input yields ``page_kind`` "empty" or "not_html".
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from archive.dates import iso_date
from archive.records import Article, Block, Hints
from archive.text import is_prose, word_count, words
from pipelines.decode import decode_html
from pipelines.jsontext import load_json
from pipelines.language import decide as decide_language

LOG = logging.getLogger(__name__)

# extract-2: one decoding path, CJK word counts, language from the text, nested fallback blocks.
EXTRACTOR_VERSION = f"extract-2+trafilatura-{trafilatura.__version__}"

# trafilatura options, chosen on the Zyte bench (bench/extract_quality.py):
# favor_precision raises F1 there, include_links gives link_chars, comments are not article text.
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "output_format": "xml",
    "include_links": True,
    "include_comments": False,
    "include_tables": True,
    "favor_precision": True,
    "with_metadata": False,
}

RETRY_BELOW_CHARS = 1000  # extracted text shorter than this: retry without favor_precision


ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "blogposting",
    "liveblogposting", "scholarlyarticle", "techarticle", "socialmediaposting", "report",
    "satiricalarticle", "advertisercontentarticle", "askpublicnewsarticle", "posting",
}  # fmt: skip
LISTING_TYPES = {"collectionpage", "itemlist", "searchresultspage", "website"}

_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_WORD = re.compile(r"\w+")
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:[/_.-]|$)")
_URL_DATE_COMPACT = re.compile(r"/((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])/")
_URL_DATE_MONTH = re.compile(
    r"/((?:19|20)\d{2})/(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*/(\d{1,2})/", re.I
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_HTMLISH = re.compile(
    r"<\s*(?:!doctype|html|head|body|meta|title|div|p|article|span|a|table|script)\b", re.I
)
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"OggS", b"ID3")  # fmt: skip

# Bot-challenge / interstitial markers. STRONG ones are vendor fingerprints; they only count
# when the page also has little visible text, because e.g. Cloudflare injects its
# challenge-platform script into ordinary article pages too.
_CHALLENGE_STRONG = re.compile(
    r"cf-browser-verification|cf_chl_opt|cf-challenge|challenge-platform|cf-turnstile"
    r"|_Incapsula_Resource|incapsula incident|px-captcha|perimeterx|captcha-delivery\.com"
    r"|geo\.captcha-delivery|datadome|g-recaptcha|h-captcha|hcaptcha\.com|recaptcha/api"
    r"|sucuri website firewall|ddos-guard|awswaf|aws-waf-token|__cf_chl",
    re.I,
)
_CHALLENGE_TEXT = re.compile(
    r"just a moment|checking your browser|checking if the site connection is secure"
    r"|verify(?:ing)? (?:that )?you are (?:a )?human|are you a robot|not a robot|captcha"
    r"|enable javascript|javascript (?:is )?(?:required|disabled)|please turn javascript on"
    r"|enable cookies|cookies (?:are )?(?:required|disabled)|attention required"
    r"|access denied|pardon our interruption|request unsuccessful|ddos protection"
    r"|unusual traffic|security check|one more step|bot protection|press (?:and|&) hold"
    r"|activez javascript|javascript activ|veuillez activer|vérifi\w* que vous (?:êtes|n'êtes)"
    r"|bitte aktivieren sie javascript|javascript aktivieren|sie sind kein roboter"
    r"|habilita javascript|activa javascript|no eres un robot"
    r"|before you continue|avant de continuer|bevor sie fortfahren|antes de continuar"
    r"|accept(?:ez)? (?:all )?cookies to continue|we value your privacy|consent to the use of cookies"
    r"|accepter les cookies|tout accepter|alle akzeptieren|aceptar todo|accept all",
    re.I,
)
_CHALLENGE_TITLE = re.compile(
    # the whole title (or the part before a " | Site" suffix) ...
    r"^\s*(?:(?:just a moment|attention required|access denied|security check|captcha"
    r"|one moment, please|please wait|ddos-guard|are you a robot|pardon our interruption"
    r"|un instant|un moment|bitte warten|verifying|we value your privacy|consent)"
    r"[\s.…!?,]*(?:$|[|–—:-])"
    # ... or an interstitial's typical opening words
    r"|before you continue|avant de continuer|bevor sie fortfahren|antes de continuar"
    r"|please wait while|un moment,? s)",
    re.I,
)

# "Key points" boxes: class/id names and visible labels (several languages).
_SUMMARY_CLASS = re.compile(
    r"key[-_ ]?points?|keypoints|key[-_ ]?takeaways?|takeaways|essentiels?|highlights"
    r"|at[-_]a[-_]glance|story[-_]highlights|article[-_]summary|summary[-_]box|tl[-_]?dr"
    r"|en[-_]bref|a[-_]retenir|key[-_]facts|das[-_]wichtigste|auf[-_]einen[-_]blick",
    re.I,
)
_SUMMARY_LABEL = re.compile(
    r"^\W*(?:les essentiels|l['’]essentiel|à retenir|ce qu['’]il faut retenir|en bref|points? clés?"
    r"|key points|key takeaways|takeaways|highlights|at a glance|in brief|in short|tl;?dr"
    r"|das wichtigste|auf einen blick|in kürze|lo (?:más )?(?:importante|esencial)|claves"
    r"|en resumen|in breve|punti chiave|em resumo|pontos-chave)\b",
    re.I,
)

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


# --------------------------------------------------------------------------- helpers


def _norm(text: str | None) -> str:
    """Collapse blanks inside lines, drop empty lines: stable text for hashing and tests."""
    if not text:
        return ""
    lines = (_WS.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if not isinstance(value, str):
        return None
    if "&" in value:
        value = html_lib.unescape(value)  # JSON-LD and CMS meta often carry escaped entities
    text = _WS.sub(" ", value.replace("\n", " ")).strip()
    return text or None


def _empty_article(page_kind: str) -> Article:
    return {
        "title": None, "authors": [], "published_at": None, "modified_at": None,
        "date_source": None, "language": None, "description": None, "section": None,
        "tags": [], "image_url": None, "canonical_url": None, "og_url": None,
        "site_name": None, "paywalled": False, "summary": None, "blocks": [], "text": "",
        "word_count": 0, "page_kind": page_kind,
    }  # fmt: skip


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


# --------------------------------------------------------------------------- metadata


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


# --------------------------------------------------------------------------- summary box


def _text_of(el: HtmlElement) -> str:
    return _norm(el.text_content())


def _find_summary(tree: HtmlElement) -> tuple[str, list[HtmlElement]] | None:
    """An editorial key-points box near the top of the body: (points text, elements to
    take out of the body).

    Recognised by a class/id name or a visible label ("Les essentiels", "Key points"...),
    it must hold a list of at least two sentence-like points and come before most of the
    article text, so a standfirst, a sidebar or a teaser list is not taken for it. A label
    that sits directly in the article container takes only itself and the list after it,
    never the container (that would remove the article).
    """
    body = tree.find(".//body")
    if body is None:
        return None
    candidates: list[tuple[HtmlElement, list[HtmlElement]]] = []
    for el in body.iter("div", "section", "aside", "ul", "ol", "details", "figure"):
        name = f"{el.get('class') or ''} {el.get('id') or ''}"
        if name.strip() and _SUMMARY_CLASS.search(name):
            candidates.append((el, [el]))
    for el in body.iter("h2", "h3", "h4", "h5", "strong", "b", "p", "summary", "span"):
        own = el.text  # the label's own text: cheap, and a label is never deeply nested
        if not (own and len(own) < 80 and _SUMMARY_LABEL.match(own)):
            continue
        label = el
        while label.getparent() is not None and label.getparent().tag in (
            "p",
            "strong",
            "b",
            "span",
        ):
            label = label.getparent()
        parent = label.getparent()
        if parent is None or parent is body:
            continue
        if _has_prose(parent):
            nxt = label.getnext()
            if nxt is not None and nxt.tag in ("ul", "ol"):
                candidates.append((nxt, [label, nxt]))
        else:
            candidates.append((parent, [parent]))
    for box, remove in candidates:
        items = [t for t in (_text_of(li) for li in box.iter("li")) if t]
        if len(items) < 2:
            continue
        text = "\n".join(items)
        # key points are sentences, not a list of teaser links or a sidebar widget
        if len(text) > 2000 or len(box.xpath(".//a")) > len(items) or len(text) / len(items) < 40:
            continue
        if box.xpath(_CHROME_ANCESTOR) or _has_prose(box):
            continue
        # "at the top": at most two long paragraphs before the box
        before = 0
        for p in box.itersiblings(preceding=True):
            before += sum(1 for x in p.iter("p") if len(x.text_content()) > 120)
        parent = box.getparent()
        while parent is not None and parent is not body and before <= 2:
            for sib in parent.itersiblings(preceding=True):
                before += sum(1 for x in sib.iter("p") if len(x.text_content()) > 120)
            parent = parent.getparent()
        if before > 2:
            continue
        return text, remove
    return None


def _has_prose(el: HtmlElement) -> bool:
    """Holds article paragraphs (long <p> outside lists): an article container, not a box."""
    return any(
        len(p.text_content()) > 200 and not any(a.tag == "li" for a in p.iterancestors())
        for p in el.iter("p")
    )


_CHROME_ANCESTOR = (  # page chrome around (or being) the box; a box may itself be an <aside>
    "ancestor::nav|ancestor::footer|ancestor::header|ancestor::aside"
    "|ancestor-or-self::*[contains(@class,'sidebar') or contains(@class,'widget')"
    " or contains(@class,'related') or contains(@class,'trending') or contains(@id,'sidebar')]"
)


def _remove(el: HtmlElement) -> None:
    """Remove an element but keep its tail text in the tree."""
    if el.getparent() is not None:
        el.drop_tree()


# --------------------------------------------------------------------------- body blocks

_BLOCK_KINDS = {
    "p": "p",
    "head": "head",
    "list": "list",
    "quote": "quote",
    "table": "table",
    "code": "code",
}


def _inline_text(el: etree._Element) -> str:
    """Text of a trafilatura XML element; <lb/> becomes a line break."""
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.tag == "lb":
            parts.append("\n")
        elif node.text:
            parts.append(node.text)
        if node.tag != "lb":
            for child in node:
                walk(child)
                if child.tail:
                    parts.append(child.tail)

    walk(el)
    return "".join(parts)


def _block_text(el: etree._Element) -> str:
    tag = el.tag
    if tag == "list":
        lines = []
        for item in el.iter("item"):
            # nested lists: take the item's own text, sublists come as their own items
            own = _inline_text_excluding(item, "list")
            if own.strip():
                lines.append(own)
        return _norm("\n".join(lines))
    if tag == "table":
        rows = []
        for row in el.iter("row"):
            cells = [_norm(_inline_text(c)).replace("\n", " ") for c in row.iter("cell")]
            rows.append(" | ".join(c for c in cells if c))
        return _norm("\n".join(rows))
    if tag == "quote":
        return _norm(
            "\n".join(_inline_text(c) for c in el)
            if len(el) and all(c.tag in ("p", "head", "list") for c in el)
            else _inline_text(el)
        )
    return _norm(_inline_text(el))


def _inline_text_excluding(el: etree._Element, skip: str) -> str:
    parts = [el.text or ""]
    for child in el:
        if child.tag != skip:
            parts.append(_inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _link_chars(el: etree._Element) -> int:
    return sum(len(_norm(_inline_text(ref)).replace("\n", "")) for ref in el.iter("ref"))


_CONTAINERS = frozenset({"div", "section", "article", "main", "body"})


def _block_elements(container: etree._Element) -> Iterator[etree._Element | str]:
    """The block elements of trafilatura's body, in order. The fallback extractors hand back
    nested <div>s holding paragraphs, headings and stray inline pieces; read as one block,
    their words ran together ("...online.Munir's repeated attacks on social mediaIn recent")."""
    for el in container:
        if el.tag in ("graphic", "lb"):
            pass
        elif el.tag in _CONTAINERS and any(c.tag in _BLOCK_KINDS or c.tag in _CONTAINERS for c in el):
            if el.text and el.text.strip():
                yield el.text
            yield from _block_elements(el)
        else:
            yield el
        if el.tail and el.tail.strip() and container.tag in _CONTAINERS:
            yield el.tail


def _blocks(body: etree._Element) -> list[Block]:
    blocks: list[Block] = []
    for el in _block_elements(body):
        if isinstance(el, str):
            if text := _norm(el):
                blocks.append(Block(kind="p", text=text, link_chars=0))
            continue
        kind = _BLOCK_KINDS.get(str(el.tag), "p")
        text = _block_text(el)
        if not text:
            continue
        block = Block(kind=kind, text=text, link_chars=min(_link_chars(el), len(text)))
        targets = [t for ref in el.iter("ref") if (t := ref.get("target"))][:8]
        if targets:
            block["links"] = targets  # where the block sends the reader: a promo signal
        blocks.append(block)
    return blocks


# --------------------------------------------------------------------------- page kind


def _looks_binary(data: bytes | str) -> bool:
    sample = data[:4096]
    if isinstance(sample, bytes):
        if sample.startswith(_BINARY_MAGIC):
            return True
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError:
            text = sample.decode("latin-1")
    else:
        text = sample
    if not text:  # a stray NUL is no proof of binary: the share of control characters decides
        return False
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad / len(text) > 0.1


_SPACES = re.compile(r"\s+")
_LISTING_SEGMENT = re.compile(r"^[a-z][a-z_]*(?:-[a-z_]+){0,2}$|^page$|^\d{1,3}$", re.I)


def _page_stats(tree: HtmlElement) -> tuple[str, int, int, int, str]:
    """(visible body text, its chars, chars inside links, number of links, <title> text).

    The exact visible text (an XPath over every text node) is only computed for short
    pages, the only ones the challenge check reads; long pages get a C-speed estimate.
    """
    body = tree.find(".//body")
    root = body if body is not None else tree
    total = " ".join((etree.tostring(root, method="text", encoding="unicode") or "").split())
    hidden = sum(len(el.text or "") for el in root.iter("script", "style", "template"))
    n_chars = max(len(total) - hidden, 0)
    visible = ""
    if n_chars < 8000:
        texts = root.xpath(
            ".//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::template)]"
        )
        visible = _SPACES.sub(" ", " ".join(texts)).strip()
        n_chars = len(visible)
    n_anchors = int(root.xpath("count(.//a[@href])"))
    link_text = len(" ".join(" ".join(root.xpath(".//a[@href]//text()")).split()))
    t = tree.find(".//title")
    title = _clean(t.text_content()) if t is not None else ""
    return visible, n_chars, link_text, n_anchors, title or ""


_TEASERS = etree.XPath(
    "count(//h2[.//a[@href]]|//h3[.//a[@href]]|//h4[.//a[@href]]"
    "|//a[@href][.//h2 or .//h3 or .//h4])"
)


def _teasers(tree: HtmlElement) -> int:
    """Headlines that are links: a river of teasers is what makes a section page."""
    return int(_TEASERS(tree))


def _listing_url(url: str) -> bool:
    """Home, section or pagination URL: short word-only path segments, no id, no date."""
    try:
        path = urlsplit(url or "").path
    except ValueError:
        return False
    segments = [s for s in path.split("/") if s]
    if not segments:
        return True
    return len(segments) <= 3 and all(_LISTING_SEGMENT.match(s) for s in segments)


def classify_page(
    html: str,
    tree: HtmlElement | None = None,
    blocks: list[Block] | None = None,
    md: dict[str, Any] | None = None,
    url: str = "",
    _stats: tuple[str, int, int, int, str] | None = None,
) -> str:
    """article | listing | empty | challenge | not_html: why a fetched page might not be
    an article, from the raw page and (when given) the extracted blocks and metadata.

    Listing needs no article markup (JSON-LD article, og:type article, published_time)
    and either link-dominated extracted text, listing markup, or a link-heavy page with
    little text and a river of linked headlines (fewer needed on a section-like URL):
    a short article on a busy portal or blog stays an article.
    """
    if not html or not html.strip():
        return "empty"
    if _looks_binary(html) or not _HTMLISH.search(html[:20000]):
        return "not_html"
    if tree is None:
        try:
            tree = load_html(html)
        except Exception:
            tree = None
        if tree is None:
            return "not_html"
    visible, n_chars, n_link_chars, n_anchors, title = _stats or _page_stats(tree)
    if n_chars < 8000 and _is_challenge(html, visible, title, blocks):
        return "challenge"
    if blocks is None:
        return "article" if n_chars else "empty"
    words = sum(word_count(b["text"]) for b in blocks)
    if words == 0:
        return "empty"
    md = md or {}
    if _prose_words(blocks) >= ARTICLE_PROSE_WORDS:
        return "article"  # running text is what an article is, whatever the page's markup says
    if not md.get("_article_markup"):
        body_chars = sum(len(b["text"]) for b in blocks)
        body_links = sum(b["link_chars"] for b in blocks)
        link_heavy = n_anchors >= 30 and n_chars > 0 and n_link_chars / n_chars > 0.4
        if (
            (body_chars and body_links / body_chars > 0.5)
            or (md.get("_listing_markup") and words < 500)
            or (link_heavy and words < 500 and _listing_url(url) and _teasers(tree) >= 8)
            or (link_heavy and words < 150 and _teasers(tree) >= 15)
            or (md.get("_og_type") == "website" and n_anchors >= 30 and words < 300)
        ):
            return "listing"
    return "article"


ARTICLE_PROSE_WORDS = 150


def _prose_words(blocks: list[Block]) -> int:
    """Words in paragraphs of running text (a listing's teasers are links; its headlines
    have no full stop)."""
    return sum(word_count(b["text"]) for b in blocks if b["kind"] == "p" and is_prose(b["text"], b["link_chars"]))


def _is_challenge(
    html: str, visible: str, title: str, blocks: list[Block] | None, weak: bool = True
) -> bool:
    """Bot challenge, JavaScript or cookie wall: a short page with a vendor fingerprint or
    a challenge title; with ``weak``, also challenge wording, unless the extracted text is
    a real (short) article that merely carries a cookie banner."""
    if _CHALLENGE_TITLE.search(title):
        return True  # callers only ask for pages under 8000 visible characters
    if not visible or len(visible) > 4000:
        return False  # longer pages arrive here with visible == "" (see _page_stats)
    words = word_count(visible)
    if words >= 120:
        return False
    if _CHALLENGE_STRONG.search(html[:200000]):
        return True
    if not weak or not (_CHALLENGE_TEXT.search(visible) or _CHALLENGE_TEXT.search(title)):
        return False
    if blocks is None:
        return True
    text = " ".join(b["text"] for b in blocks)
    return word_count(text) < 40 or bool(_CHALLENGE_TEXT.search(text))


# --------------------------------------------------------------------------- entry point


def extract_article(
    html: str | bytes,
    url: str,
    hints: Hints | None = None,
    language_hint: str | None = None,
) -> Article:
    """Article dict for one fetched page (see docs/ARCHITECTURE.md). Never raises."""
    return extract_with_tree(html, url, hints, language_hint)[0]


def extract_with_tree(
    html: str | bytes,
    url: str,
    hints: Hints | None = None,
    language_hint: str | None = None,
) -> tuple[Article, HtmlElement | None]:
    """extract_article, and the page's parsed tree for the next stage (promo stripping),
    so a page is parsed once. Never raises."""
    holder: list[HtmlElement] = []
    try:
        return _extract(html, url, hints, language_hint, holder), (holder[0] if holder else None)
    except Exception:  # a broken page must not stop a crawl; it is reported, not raised
        LOG.exception("extraction failed for %s", url)
        return _bare("empty", language_hint), None


def _extract(
    html: str | bytes, url: str, hints: Hints | None, language_hint: str | None,
    holder: list[HtmlElement],
) -> Article:
    hints = hints if isinstance(hints, dict) else {}
    if isinstance(html, (bytes, bytearray)):
        if _looks_binary(bytes(html)):
            return _bare("not_html", language_hint)
        html = decode_html(bytes(html))[0]
    if not isinstance(html, str):
        return _bare("not_html", language_hint)
    if "\x00" in html:
        html = html.replace("\x00", "")  # lxml refuses NUL characters; they carry no text
    if not html.strip():
        return _bare("empty", language_hint)
    if _looks_binary(html) or not _HTMLISH.search(html[:20000]):
        return _bare("not_html", language_hint)
    tree = load_html(html)
    if tree is None:
        return _bare("not_html", language_hint)
    holder.append(tree)
    stats = _page_stats(tree)
    if stats[1] < 8000 and _is_challenge(html, stats[0], stats[4], None, weak=False):
        kind = "challenge"  # sure already: skip the body extraction
    elif not stats[1]:
        kind = "empty"
    else:
        kind = "article"

    md = _metadata(tree, url)
    art = _empty_article("article")
    art.update({key: md[key] for key in art if key in md})  # type: ignore[typeddict-item]  # the metadata keys are Article keys
    art["language"] = md["language"] or _language(language_hint)
    if not art["title"] and _clean(hints.get("title")):
        art["title"] = _clean(hints.get("title"))

    if kind in ("challenge", "empty"):
        art["page_kind"] = kind
        if kind == "challenge" and stats[4]:
            art["title"] = stats[4]  # "Just a moment...": the interstitial's own title
        art["published_at"], art["modified_at"], art["date_source"] = _pick_dates(
            md, None, url, hints
        )
        return art

    summary = _find_summary(tree)
    if summary:
        art["summary"], boxes = summary
        for box in boxes:
            _remove(box)

    blocks = _body_blocks(tree, url, TRAFILATURA_OPTIONS)
    if sum(len(b["text"]) for b in blocks) < RETRY_BELOW_CHARS:
        # precision mode sometimes keeps only a fragment; balanced mode then does better
        balanced = _body_blocks(tree, url, {**TRAFILATURA_OPTIONS, "favor_precision": False})
        if sum(len(b["text"]) for b in balanced) > 2 * sum(len(b["text"]) for b in blocks):
            blocks = balanced
    if blocks and art["title"] and _repeats_title(blocks[0], art["title"]):
        blocks = blocks[1:]  # the title is its own field; keeping it would count it twice
    art["blocks"] = blocks
    art["text"] = "\n\n".join(b["text"] for b in blocks)
    art["word_count"] = word_count(art["text"])
    art["language"] = decide_language(art["language"], art["text"])
    art["page_kind"] = classify_page(html, tree, blocks, md, url=url, _stats=stats)
    art["published_at"], art["modified_at"], art["date_source"] = _pick_dates(
        md, tree if art["page_kind"] == "article" else None, url, hints
    )
    return art


def _body_blocks(tree: HtmlElement, url: str, options: dict[str, Any]) -> list[Block]:
    doc = trafilatura.bare_extraction(tree, url=url or None, **options)
    body = getattr(doc, "body", None) if doc is not None else None
    return _blocks(body) if body is not None else []


def _same(a: str, b: str) -> bool:
    return _WORD.findall(a.casefold()) == _WORD.findall(b.casefold())


def _repeats_title(block: Block, title: str) -> bool:
    """The first block is the headline again: the same words, or the headline with its
    kicker ("Premier League Rückschlag im Titelkampf - Liverpool verliert ...") or the
    site's name around it, as a heading or a line without a full stop."""
    text = block["text"]
    if _same(text, title):
        return True
    if block["kind"] != "head" and re.search(r"[.!?。]\s*$", text):
        return False
    have, want = words(text.casefold()), words(title.casefold())
    if not want or len(have) > len(want) + 12 or "\n" in text.strip():
        return False
    joined, sub = " " + " ".join(have) + " ", " " + " ".join(want) + " "
    return sub in joined or (len(have) >= 4 and " " + " ".join(have) + " " in sub)


def _bare(page_kind: str, language_hint: str | None) -> Article:
    """Article for a page with nothing to extract: only its kind and the outlet language."""
    art = _empty_article(page_kind)
    art["language"] = _language(language_hint)
    return art
