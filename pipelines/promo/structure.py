"""Promotions found by the page structure around a block, whatever its words.

A block of the extracted text is looked up in the page tree, and the small box around it
(the nearest ancestors that hold more than the block, up to `BOX_CHARS`) is read:

- a box with a form control (an e-mail field, a sign-up form) is a call to action: its
  heading and its blurb go ("Get daily National news" above a newsletter form);
- a box whose links go to a checkout, newsletter, app-store, donation or messenger page
  (`signals.link_kind`) is a call to action of that kind, even when the block itself links
  nowhere (the button sits beside it);
- a box that is mostly links to other pages of the site is a rail of headlines: its label
  and its headlines go ("Most read in Football" above a list the extraction dropped).

Only short blocks that are not running prose are asked: a paragraph of the story sits in
the article body, a box much larger than any of these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from archive.text import is_prose, word_count
from pipelines.promo import signals
from pipelines.promo.rules import _squash

BOX_CHARS = 700  # a box larger than this (squashed characters) is the article, not a promo
MAX_WORDS = 40  # longer blocks are never judged by their box
_CLIMB = 6  # ancestors looked at above the block's own element
_PREFIX = 8
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head", "title"})
_CONTROLS = ("form", "input", "select", "textarea")
_ARTICLE_PATH = re.compile(r"/[^/?#]*\d[^/?#]*(?:[/?#]|$)|/[\w%]+(?:-[\w%]+){2,}")


def box_verdicts(
    root: Any,
    blocks: Sequence[Mapping[str, Any]],
    squashed: Sequence[str],
    verdict: Mapping[int, tuple[str, str]],
    page_url: str | None,
) -> dict[int, tuple[str, str]]:
    """(kind, rule) for the blocks whose surrounding box is a call to action or a rail of
    headlines; blocks already judged, quotes and running prose are left alone."""
    wanted: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        text = str(b.get("text") or "")
        if (
            i in verdict
            or b.get("kind") in ("quote", "table", "code")
            or not squashed[i]
            or len(squashed[i]) > BOX_CHARS
            or not 2 <= word_count(text) <= MAX_WORDS
            or is_prose(text, int(b.get("link_chars") or 0))
        ):
            continue
        wanted.setdefault(squashed[i][:_PREFIX], []).append(i)
    if not wanted:
        return {}
    host = urlsplit(page_url).hostname if page_url else None
    # Every place the page holds the block's text must say promotion: a headline of the
    # story that a side rail repeats is still the story's.
    seen: dict[int, list[tuple[str, str] | None]] = {}
    body = root.find("body")
    for el in (body if body is not None else root).iter():
        if not isinstance(el.tag, str) or el.tag in _SKIP or not el.text or el.text.isspace():
            continue
        start = _squash(el.text.lstrip()[: 4 * _PREFIX])[:_PREFIX]
        for i in wanted.get(start, ()) if start else ():
            held, box = _box_of(el, squashed[i])
            if held:
                text = str(blocks[i].get("text") or "")
                seen.setdefault(i, []).append(_judge(box, text, host) if box is not None else None)
    return {i: hits[0] for i, hits in seen.items() if hits[0] and all(hits)}


def _box_of(el: Any, block: str) -> tuple[bool, Any]:
    """Whether the element (with its inline ancestors) holds `block`, and the outermost
    ancestor that holds more than the block and stays under BOX_CHARS (or None)."""
    node, own = el, None
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str):
            return False, None
        text = _squash(node.text_content())
        if len(text) >= len(block):
            if block not in text or len(text) > 2 * len(block) + 40:
                return False, None  # the element's text is not the block's
            own = node
            break
        node = node.getparent()
    if own is None:
        return False, None
    box, node = None, own.getparent()
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str) or node.tag in ("body", "html"):
            break
        size = len(_squash(node.text_content()))
        if size > BOX_CHARS:
            break
        if size > len(block):
            box = node
        node = node.getparent()
    return True, box


def _judge(box: Any, text: str, host: str | None) -> tuple[str, str] | None:
    controls = [
        c
        for c in box.iter(*_CONTROLS)
        if c.tag != "input" or (c.get("type") or "text").lower() not in ("hidden", "search")
    ]
    if any(c.tag == "input" and (c.get("type") or "").lower() == "email" for c in controls):
        return ("newsletter", "signal.box:form")
    hrefs = [str(a.get("href") or "") for a in box.iter("a")]
    kind = signals.link_kind(h for h in hrefs if h)
    if controls and box.xpath(".//form"):
        return (kind or "subscription", "signal.box:form")
    if _holds_prose(box, text):
        return None  # a piece of the article (a section with its paragraphs), not a promo box
    if kind and kind != "social":
        return (kind, f"signal.box:{kind}")
    if word_count(text) <= 25 and signals.unpunctuated(text) and _rail(box, text, hrefs, host):
        return ("read_also", "signal.box:headlines")
    return None


def _holds_prose(box: Any, text: str) -> bool:
    block = _squash(text)
    for p in box.iter("p", "li"):
        para = p.text_content()
        if is_prose(para) and _squash(para) != block:
            return True
    return False


def _rail(box: Any, text: str, hrefs: list[str], host: str | None) -> bool:
    """Links to at least two distinct article pages of the same site, and besides the block
    (the rail's label, or one of its headlines) next to nothing but links."""
    pages = set()
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme not in ("", "http", "https") or (
            parts.hostname and host and parts.hostname != host
        ):
            continue
        if _ARTICLE_PATH.search(parts.path or ""):
            pages.add(parts.path)
    if len(pages) < 2:
        return False
    block = _squash(text)
    anchors = [_squash(a.text_content()) for a in box.iter("a")]
    rest = len(_squash(box.text_content())) - len(block)
    linked = sum(len(a) for a in anchors) - (len(block) if any(block in a for a in anchors) else 0)
    return linked >= 0.7 * rest
