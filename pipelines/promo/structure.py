"""Promotions found by the page structure around a block, whatever its words.

A block of the extracted text is looked up in the page tree, and the small box around it
(the nearest ancestors that hold more than the block, up to `BOX_CHARS`) is read:

- a box with a form control (an e-mail field, a sign-up form) is a call to action: its
  heading and its blurb go ("Get daily National news" above a newsletter form);
- a box whose links go to a checkout, newsletter, app-store, donation or messenger page
  (`signals.link_kind`) is a call to action of that kind, even when the block itself links
  nowhere (the button sits beside it);
- a box that is mostly links to other pages of the site is a rail of headlines: its label
  and its headlines go ("Most read in Football" above a list the extraction dropped);
  with one such link, it is a teaser card and the summary beside the headline goes.

- a block inside a link to another article of the site is a teaser card (headline, date
  and summary in one anchor), however long its summary;
- a block inside a figure is its caption (kind `credit`);
- a short line in a widget (a button beside it, hardly any other text) is the widget's
  label, message or small print ("URL copied", "Share so more people see it", the terms
  under a "Join us on WhatsApp" button), kind `social`.

Only short blocks that are not running prose are judged by their box: a paragraph of the
story sits in the article body, a box much larger than any of these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from archive.text import is_prose, word_count
from pipelines.promo import signals
from pipelines.promo.markup import _token_lists
from pipelines.promo.rules import _squash

BOX_CHARS = 700  # a box larger than this (squashed characters) is the article, not a promo
MAX_WORDS = 40  # longer blocks are never judged by their box
CARD_CHARS = 2000  # a teaser card's summary can be long; the story's paragraphs sit in no link
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
    short: set[int] = set()
    for i, b in enumerate(blocks):
        text = str(b.get("text") or "")
        if i in verdict or b.get("kind") in ("quote", "table", "code") or not squashed[i]:
            continue
        if len(squashed[i]) > CARD_CHARS or word_count(text) < 2:
            continue
        wanted.setdefault(squashed[i][:_PREFIX], []).append(i)
        if word_count(text) <= MAX_WORDS and not is_prose(text, int(b.get("link_chars") or 0)):
            short.add(i)
    if not wanted:
        return {}
    page = urlsplit(page_url) if page_url else None
    removed = [squashed[j] for j in verdict]
    # Every place the page holds the block's text must say promotion: a headline of the
    # story that a side rail repeats is still the story's.
    seen: dict[int, list[tuple[str, str] | None]] = {}
    sizes: dict[Any, int] = {}  # element -> squashed text length, asked once a page
    body = root.find("body")
    for el in (body if body is not None else root).iter():
        if not isinstance(el.tag, str) or el.tag in _SKIP or not el.text or el.text.isspace():
            continue
        start = _squash(el.text.lstrip()[: 4 * _PREFIX])[:_PREFIX]
        for i in wanted.get(start, ()) if start else ():
            own, box = _box_of(el, squashed[i], i in short, sizes)
            if own is None:
                continue
            text = str(blocks[i].get("text") or "")
            hit = ("read_also", "signal.box:teaser") if _in_card(own, squashed[i], page) else None
            if hit is None and _in_figure(own):
                hit = ("credit", "signal.caption")
            if hit is None and i in short and box is not None:
                hit = _judge(box, text, page.hostname if page else None, removed)
            if hit is None and i in short and page and _card(own, squashed[i], page.hostname):
                hit = ("read_also", "signal.box:card")
            if hit is None and i in short and _chrome(own, box, squashed[i], sizes):
                hit = ("social", "signal.box:controls")
            seen.setdefault(i, []).append(hit)
    return {i: hits[0] for i, hits in seen.items() if hits[0] and all(hits)}


def _in_card(own: Any, block: str, page: Any) -> bool:
    """The block sits inside a link to another article of the site: a teaser card (title,
    date and summary in one anchor), however long its summary."""
    node = own
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str):
            return False
        if node.tag == "a":
            if len(_squash(node.text_content())) > 1.5 * len(block) + 200:
                return False  # an unclosed anchor the parser stretched over the story
            return _other_article(str(node.get("href") or ""), page)
        node = node.getparent()
    return False


def _in_figure(own: Any) -> bool:
    """The block is a figure's caption (or sits in the figure): about a picture, not the story."""
    node = own
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str):
            return False
        if node.tag in ("figcaption", "figure"):
            return True
        node = node.getparent()
    return False


def _other_article(href: str, page: Any) -> bool:
    parts = urlsplit(href)
    if parts.scheme not in ("", "http", "https") or not _ARTICLE_PATH.search(parts.path or ""):
        return False
    if page is None:
        return True
    if parts.hostname and parts.hostname != page.hostname:
        return False
    return parts.path.rstrip("/") != (page.path or "").rstrip("/")


def _box_of(el: Any, block: str, want_box: bool, sizes: dict[Any, int]) -> tuple[Any, Any]:
    """The element (or inline ancestor) that holds `block`, or None, and (when `want_box`)
    the outermost ancestor that holds more than the block and stays under BOX_CHARS."""

    def size(node: Any) -> int:
        if node not in sizes:
            sizes[node] = len(_squash(node.text_content()))
        return sizes[node]

    node, own = el, None
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str):
            return None, None
        if size(node) >= len(block):
            if size(node) > 2 * len(block) + 40 or block not in _squash(node.text_content()):
                return None, None  # the element's text is not the block's
            own = node
            break
        node = node.getparent()
    if own is None or not want_box:
        return own, None
    box, node = None, own.getparent()
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str) or node.tag in ("body", "html"):
            break
        if size(node) > BOX_CHARS:
            break
        if size(node) > len(block):
            box = node
        node = node.getparent()
    return own, box


def _judge(box: Any, text: str, host: str | None, removed: Sequence[str]) -> tuple[str, str] | None:
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
    if _holds_prose(box, text, removed):
        return None  # a piece of the article (a section with its paragraphs), not a promo box
    if kind and kind != "social":
        return (kind, f"signal.box:{kind}")
    if word_count(text) <= 25 and signals.unpunctuated(text) and _rail(box, text, hrefs, host):
        return ("read_also", "signal.box:headlines")
    return None


_CHROME_EXTRA = 80  # squashed characters a widget may hold besides the line: button labels


def _chrome(own: Any, box: Any, block: str, sizes: dict[Any, int]) -> bool:
    """The (short, not prose) block is the label, message or small print of a page widget:
    its element, or a small box around it, holds a button (a `<button>`, role=button, a
    javascript: link, a btn/button class), next to no other text and no picture ("URL
    copied", "Share so more people see it")."""
    labels = [_squash(c.text_content()) for c in own.iter() if _control(c)]
    if any(label and label != block for label in labels):
        return False  # a button's label inside longer text: a quote and its "Click to Tweet"
    for node in (own, box):
        if node is None:
            continue
        if node not in sizes:
            sizes[node] = len(_squash(node.text_content()))
        if sizes[node] - len(block) > _CHROME_EXTRA:
            continue
        controls = [c for c in node.iter() if _control(c)]
        if controls and not _bare_media(node, controls):
            return True
    return False


_MEDIA = ("img", "picture", "video", "iframe", "figure")


def _bare_media(node: Any, controls: list[Any]) -> bool:
    """A picture or a video outside the buttons: the line is its title or caption (a
    zoom button beside an infographic), not a widget's (a share icon inside its button)."""
    inside = [m for c in controls for m in c.iter(*_MEDIA)]  # held: lxml reuses the proxies
    return any(m not in inside for m in node.iter(*_MEDIA))


def _control(el: Any) -> bool:
    if not isinstance(el.tag, str):
        return False
    if el.tag == "button" or (el.get("role") or "").lower() == "button":
        return True
    if el.tag == "a" and str(el.get("href") or "").strip().lower().startswith("javascript:"):
        return True
    return any(t in ("btn", "button") for toks in _token_lists(el.get("class") or "") for t in toks)


def _holds_prose(box: Any, text: str, removed: Sequence[str]) -> bool:
    """A paragraph of running text in the box that is neither the block nor a block already
    removed (a pitch's own sentences do not make its box a piece of the story)."""
    block = _squash(text)
    for p in box.iter("p", "li"):
        para = p.text_content()
        sq = _squash(para)
        if is_prose(para) and sq != block and not any(sq in r for r in removed):
            return True
    return False


def _site(host: str) -> str:
    """The registered part of a host, roughly: "epaper.example.co.id" -> "example.co.id"."""
    labels = host.lower().removeprefix("www.").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-2]) <= 3 and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def _card(own: Any, block: str, host: str | None) -> bool:
    """A teaser card: the block (a summary) and, in the smallest box around it that holds a
    link, a headline of another article of the site (its e-paper and other sub-domains
    included), with nothing else in that box but links and a label."""
    if host is None:
        return False
    node = own.getparent()
    for _ in range(_CLIMB):
        if node is None or not isinstance(node.tag, str) or node.tag in ("body", "html"):
            return False
        inner = list(own.iter("a"))  # the block's own links are its words, not a headline
        anchors = [
            a for a in node.iter("a") if a not in inner and block not in _squash(a.text_content())
        ]
        if anchors:
            break
        node = node.getparent()
    else:
        return False
    size = len(_squash(node.text_content()))
    if size > BOX_CHARS:
        return False
    heads = [a for a in anchors if word_count(a.text_content()) >= 3 and _headline(a, host)]
    rest = size - len(block)
    linked = sum(len(_squash(a.text_content())) for a in anchors)
    return bool(heads) and linked >= 0.7 * rest


def _headline(a: Any, host: str) -> bool:
    href = urlsplit(str(a.get("href") or ""))
    if href.scheme not in ("", "http", "https"):
        return False
    same = href.hostname is None or _site(href.hostname) == _site(host)
    return same and bool(_ARTICLE_PATH.search(href.path or ""))


def _rail(box: Any, text: str, hrefs: list[str], host: str | None) -> bool:
    """Links to at least two distinct article pages of the same site, and besides the block
    (the rail's label, or one of its headlines) next to nothing but links."""
    site = urlsplit(f"https://{host}/") if host else None
    pages = {urlsplit(h).path for h in hrefs if _other_article(h, site)}
    if len(pages) < 2:
        return False
    block = _squash(text)
    anchors = [_squash(a.text_content()) for a in box.iter("a")]
    rest = len(_squash(box.text_content())) - len(block)
    linked = sum(len(a) for a in anchors) - (len(block) if any(block in a for a in anchors) else 0)
    return linked >= 0.7 * rest
