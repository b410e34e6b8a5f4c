"""The body as blocks: trafilatura's XML turned into typed blocks with their links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trafilatura
from lxml import etree
from lxml.html import HtmlElement

from archive.records import Block
from pipelines.extract.common import _norm

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
        elif el.tag in _CONTAINERS and any(
            c.tag in _BLOCK_KINDS or c.tag in _CONTAINERS for c in el
        ):
            if el.text and el.text.strip():
                yield el.text
            yield from _block_elements(el)
        else:
            yield el
        if el.tail and el.tail.strip() and container.tag in _CONTAINERS:
            yield el.tail


# Inline elements trafilatura leaves at the top of the body when a page's text sits between
# <br>s instead of in <p>s: `<p>…Apple will </p><ref>transition …</ref><p>, including …</p>`.
_INLINE = frozenset({"ref", "hi"})
_SENTENCE_END = ".!?…:;。！？"
_CLOSERS = "\"'”’»)]"
_GLUED_LEFT = ",.;:!?)]}»”’…"


def _ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip(_CLOSERS)[-1:] in tuple(_SENTENCE_END)


def _continues(text: str) -> bool:
    """The text goes on a sentence begun before it (a comma, a closing mark, a small letter)."""
    first = text.lstrip()[:1]
    return bool(first) and (first in _GLUED_LEFT or first.islower())


def _join(block: Block, piece: Block) -> None:
    """`piece` into `block`, the sentence they split put back together."""
    glue = "" if piece["text"][:1] in _GLUED_LEFT else " "
    block["text"] = block["text"] + glue + piece["text"]
    block["link_chars"] = block.get("link_chars", 0) + piece.get("link_chars", 0)
    links = [*block.get("links", []), *piece.get("links", [])][:8]
    if links:
        block["links"] = links


def _blocks(body: etree._Element) -> list[Block]:
    blocks: list[Block] = []
    inline_last = False  # the last block ends with an inline element its sentence goes on after
    for el in _block_elements(body):
        if isinstance(el, str):
            if text := _norm(el):
                piece = Block(kind="p", text=text, link_chars=0)
                if inline_last and _continues(text):
                    _join(blocks[-1], piece)
                else:
                    blocks.append(piece)
            inline_last = False
            continue
        kind = _BLOCK_KINDS.get(str(el.tag), "p")
        text = _block_text(el)
        if not text:
            continue
        block = Block(kind=kind, text=text, link_chars=min(_link_chars(el), len(text)))
        targets = [t for ref in el.iter("ref") if (t := ref.get("target"))][:8]
        if targets:
            block["links"] = targets  # where the block sends the reader: a promo signal
        inline = el.tag in _INLINE
        previous = blocks[-1] if blocks and blocks[-1]["kind"] == "p" else None
        if previous is not None and inline and not _ends_sentence(previous["text"]):
            _join(previous, block)  # a link inside a sentence, not a line of its own
        elif previous is not None and inline_last and kind == "p" and _continues(text):
            _join(previous, block)  # the rest of that sentence
        else:
            blocks.append(block)
        inline_last = inline
    return blocks


def _body_blocks(tree: HtmlElement, url: str, options: dict[str, Any]) -> list[Block]:
    doc = trafilatura.bare_extraction(tree, url=url or None, **options)
    body = getattr(doc, "body", None) if doc is not None else None
    return _blocks(body) if body is not None else []
