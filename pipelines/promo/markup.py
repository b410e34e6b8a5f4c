"""Boxes the page markup names as promotions (class, id, ARIA, data-* names): found once per page."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.promo.rules import PromoRules, _Box, _norm, _squash

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


_TOKEN_SPLIT = re.compile(r"[\s\-_.:/]+")


def _token_lists(value: str) -> list[list[str]]:
    """One token list per class (or word group) of an attribute value."""
    out = []
    for part in value.split():
        toks = [t.lower() for t in _TOKEN_SPLIT.split(_CAMEL.sub("-", part)) if t]
        if toks:
            out.append(toks)
    return out


def _element_names(el: Any) -> list[list[str]]:
    lists: list[list[str]] = []
    for attr, value in el.attrib.items():
        attr = str(attr).lower()
        value = str(value)
        if attr in ("class", "id"):
            lists += _token_lists(value)
        elif attr in ("aria-label", "role"):
            words = [t for t in _TOKEN_SPLIT.split(_norm(value)) if t]
            if words:
                lists.append(words)
                lists.append(["-".join(words)])
                lists.append(["".join(words)])
        elif attr.startswith("data-"):
            lists += _token_lists(attr[5:])
            if len(value) <= 60:
                lists += _token_lists(value)
    return lists


def _parse(html: str) -> Any:
    """Parse for markup checks; None when the page cannot be parsed (text rules still run)."""
    import lxml.html

    try:
        return lxml.html.document_fromstring(html)
    except ValueError:  # a str with an XML encoding declaration: lxml wants bytes
        try:
            return lxml.html.document_fromstring(html.encode("utf-8", "replace"))
        except Exception:
            return None
    except Exception:
        return None


@dataclass
class _FoundBox:
    text: str  # squashed
    kind: str
    rule: str
    gate: bool = False


def _match_box(
    lists: list[list[str]], index: Mapping[str, list[tuple[tuple[str, ...], _Box | None]]]
) -> tuple[_Box, str] | None:
    found: tuple[_Box, str] | None = None
    gate: tuple[_Box, str] | None = None
    editorial = False
    for toks in lists:
        for i, tok in enumerate(toks):
            for name, box in index.get(tok, ()):
                if tuple(toks[i : i + len(name)]) != name:
                    continue
                if box is None:
                    editorial = True
                elif box.gate and gate is None:
                    gate = (box, "-".join(name))
                elif not box.gate and found is None:
                    found = (box, "-".join(name))
    # An editorial (keep) name wins over any promo name, but not over a gate: a gated
    # article body ("article-body paywalled") is still gated.
    return gate if editorial else (found or gate)


_UNSEEN: Any = object()


_NAME_CACHE_MAX = 50_000


# Never a box: the document's frame, code, and inline elements (a pitch box holds whole
# paragraphs; skipping inline tags halves the elements whose names are matched).
_SKIP_TAGS = frozenset({
    "html", "body", "head", "script", "style", "noscript", "template", "svg", "path", "g", "use",
    "a", "span", "img", "picture", "source", "b", "i", "em", "strong", "small", "sup", "sub", "br",
    "time", "abbr", "meta", "link", "input", "label", "option", "iframe", "video", "audio", "track",
})  # fmt: skip


def _find_boxes(root: Any, rules: PromoRules, article_chars: int) -> list[_FoundBox]:
    """Elements whose names say promotion, small enough not to be the article itself."""
    index = rules.box_index
    cache = rules.name_cache
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in _SKIP_TAGS or not el.attrib:
            continue
        key = tuple(el.attrib.items())
        hit = cache.get(key, _UNSEEN)
        if hit is _UNSEEN:
            lists = _element_names(el)
            hit = _match_box(lists, index) if lists else None
            if len(cache) >= _NAME_CACHE_MAX:
                cache.clear()
            cache[key] = hit
        if hit is None:
            continue
        box, name = hit
        text = _squash(el.text_content())
        # A wrapper with a promo name around the whole story is the article, not a promo;
        # gate boxes are kept whatever their size, their blocks are judged one by one.
        if text and (box.gate or len(text) <= 0.5 * article_chars):
            found.append(_FoundBox(text, box.kind, f"{box.id}:{name}", box.gate))
    return found


def _contained(block: str, boxes: Sequence[_FoundBox]) -> _FoundBox | None:
    if not block:
        return None
    for box in boxes:
        if block in box.text and (len(block) >= 25 or 2 * len(block) >= len(box.text)):
            return box
    return None
