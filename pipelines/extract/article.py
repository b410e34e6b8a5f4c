"""The extraction stage: one fetched HTML page -> one Article (archive/records.py).

Pure function, no Scrapy types. The body comes from trafilatura (XML output, so block
kinds and link text survive); the metadata is read from JSON-LD, meta tags and ``<time>``
(metadata.py) because trafilatura's own metadata pass costs about as much as the text
extraction and does not say *where* a date came from (we store date provenance).
``extract_article`` never raises: broken input yields ``page_kind`` "empty" or "not_html".
"""

from __future__ import annotations

import re

import trafilatura
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from archive.records import Article, Block, Hints
from archive.text import word_count, words
from pipelines.decode import decode_html
from pipelines.extract.blocks import TRAFILATURA_OPTIONS, _body_blocks
from pipelines.extract.common import _WORD, LOG, _clean
from pipelines.extract.metadata import _language, _metadata, _pick_dates
from pipelines.extract.page_kind import (
    _HTMLISH,
    PageStats,
    _is_challenge,
    _looks_binary,
    classify_page,
)
from pipelines.extract.summary import _find_summary, _remove
from pipelines.language import decide as decide_language

# extract-2: one decoding path, CJK word counts, language from the text, nested fallback blocks.
EXTRACTOR_VERSION = f"extract-2+trafilatura-{trafilatura.__version__}"


RETRY_BELOW_CHARS = 1000  # extracted text shorter than this: retry without favor_precision


def _empty_article(page_kind: str) -> Article:
    return {
        "title": None, "authors": [], "published_at": None, "modified_at": None,
        "date_source": None, "language": None, "description": None, "section": None,
        "tags": [], "image_url": None, "canonical_url": None, "og_url": None,
        "site_name": None, "paywalled": False, "summary": None, "blocks": [], "text": "",
        "word_count": 0, "page_kind": page_kind,
    }  # fmt: skip


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
    html: str | bytes,
    url: str,
    hints: Hints | None,
    language_hint: str | None,
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
    stats = PageStats(tree)
    if stats.n_chars < 8000 and _is_challenge(html, stats.visible, stats.title, None, weak=False):
        kind = "challenge"  # sure already: skip the body extraction
    elif not stats.n_chars:
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
        if kind == "challenge" and stats.title:
            art["title"] = stats.title  # "Just a moment...": the interstitial's own title
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
