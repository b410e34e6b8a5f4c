"""JSON and text from outlets, repaired where it enters: JSON-LD, JSON Feed, feed titles.

JSON allows escapes of lone UTF-16 surrogates (``"\\ud83d"``), and XML and HTML allow
character references to them (``&#55357;&#56832;``); Python turns both into strings that
cannot be encoded as UTF-8, so one such field used to fail the spool write (the page lost)
or make feedparser raise (the whole feed lost). Here a surrogate pair becomes the character
it encodes and a lone surrogate becomes U+FFFD; nesting too deep to parse is unreadable
input (ValueError), never a RecursionError that escapes as a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_text(value: str) -> str:
    """A string with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(value):
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repair(data: Any) -> Any:
    """Every string (keys too) of a parsed JSON value repaired; iterative, so depth is free."""
    if isinstance(data, str):
        return repair_text(data)
    if not isinstance(data, dict | list):
        return data
    root: list[Any] = [data]
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = repair_text(item)
                elif isinstance(item, dict | list):
                    stack.append(item)
        else:
            for key in list(node):
                item = node[key]
                if isinstance(item, str):
                    item = repair_text(item)
                elif isinstance(item, dict | list):
                    stack.append(item)
                fixed = repair_text(key) if isinstance(key, str) else key
                if fixed != key:
                    del node[key]
                node[fixed] = item
    return root[0]


def load_json(text: str | bytes, *, strict: bool = True) -> Any:
    """json.loads, repaired: ValueError for anything unreadable, nesting too deep included
    (json.loads recurses once per level on the caller's stack, so how deep is too deep
    depends on where it is called: deep inside a crawl, 990 levels were already too many)."""
    try:
        data = json.loads(text, strict=strict)
    except RecursionError:
        raise ValueError("JSON nested too deep to parse") from None
    return repair(data)


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def repair_char_refs(body: bytes) -> bytes:
    """XML/HTML bytes with character references to surrogates rewritten: a pair becomes a
    reference to the character it encodes, a lone one a reference to U+FFFD. A reference to
    a surrogate is invalid in XML; feedparser decodes it into a string it cannot encode."""
    if b"&#" not in body:
        return body
    refs = list(_CHAR_REF.finditer(body))
    if not refs:
        return body

    def code(m: re.Match[bytes]) -> int:
        return int(m.group(1), 16) if m.group(1) else int(m.group(2))

    out: list[bytes] = []
    last = 0
    i = 0
    while i < len(refs):
        m = refs[i]
        value = code(m)
        if not 0xD800 <= value <= 0xDFFF:
            i += 1
            continue
        out.append(body[last : m.start()])
        nxt = refs[i + 1] if i + 1 < len(refs) else None
        if (
            0xD800 <= value <= 0xDBFF
            and nxt is not None
            and nxt.start() == m.end()
            and 0xDC00 <= code(nxt) <= 0xDFFF
        ):
            joined = 0x10000 + ((value - 0xD800) << 10) + (code(nxt) - 0xDC00)
            out.append(b"&#%d;" % joined)
            last = nxt.end()
            i += 2
            continue
        out.append(b"&#65533;")
        last = m.end()
        i += 1
    if not out:
        return body
    out.append(body[last:])
    return b"".join(out)
