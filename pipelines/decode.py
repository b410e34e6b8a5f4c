"""Bytes of a fetched page -> text: the one decoding path of the crawl, `mediawatch extract`
and `mediawatch reprocess` (which re-reads what the crawl decoded), so all three see the same
characters.

Declared charsets are often wrong (a template copied from an old site, a proxy adding
`charset=iso-8859-1`), while valid UTF-8 is nearly never an accident: non-ASCII bytes that
decode as UTF-8 are UTF-8 whatever the page says. A UTF-8 page with a few stray windows-1252
bytes (a pasted quote mark) keeps its UTF-8 and only those bytes are read as windows-1252;
the whole page falls back to its declared single-byte charset only when most of its
non-ASCII bytes are not UTF-8. w3lib does the declaration part (BOM, HTTP header, ``<meta>``,
as browsers do); this module adds the checks it does not make.
"""

from __future__ import annotations

import codecs
import re

from w3lib.encoding import html_body_declared_encoding, html_to_unicode, resolve_encoding

_REPAIR = "mediawatch-cp1252-bytes"
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_CP1252_HOLES = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})  # bytes windows-1252 leaves undefined


def _repair_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: the offending bytes as windows-1252 (latin-1 where cp1252 has
    no character), so one stray byte costs one character, not the page."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(
        chr(b) if b in _CP1252_HOLES else bytes([b]).decode("cp1252") for b in bad
    ), exc.end


codecs.register_error(_REPAIR, _repair_bytes)


def _codec(name: str | None) -> str | None:
    """Python codec name for a declared charset, WHATWG aliases applied (latin-1 -> cp1252)."""
    if not name:
        return None
    resolved = resolve_encoding(name)
    if not resolved:
        return None
    try:
        return codecs.lookup(resolved).name
    except LookupError:
        return None


def _content_type_charset(content_type: str | None) -> str | None:
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type or "", re.I)
    return m[1] if m else None


def _utf8_share(body: bytes) -> tuple[int, int]:
    """(non-ASCII runs that are valid UTF-8, non-ASCII runs in all), over the first 1 MB."""
    good = total = 0
    for m in _HIGH_RUN.finditer(body, 0, 1_000_000):
        total += 1
        try:
            m[0].decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            pass
    return good, total


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str | None]:
    """The page's text and a note when its declared charset was overruled (for `pages.detail`).

    `content_type` is the HTTP Content-Type header, if any. A BOM always wins."""
    if body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return html_to_unicode(content_type, body)[1], None
    if body.isascii():
        return body.decode("ascii"), None
    http = _codec(_content_type_charset(content_type))
    meta = _codec(html_body_declared_encoding(body))
    declared = http or meta
    try:
        # most pages are valid UTF-8: one C-speed pass, no run counting (4 ms a page in the
        # crawl's reactor thread on accented text)
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        good, total = _utf8_share(body)
    else:
        if declared in (None, "utf-8"):
            return text, None
        return text, f"charset: declared {declared} but the bytes are UTF-8; decoded as utf-8"
    if good == total:
        if declared in (None, "utf-8"):
            return body.decode("utf-8", _REPAIR), None
        return body.decode(
            "utf-8", _REPAIR
        ), f"charset: declared {declared} but the bytes are UTF-8; decoded as utf-8"
    if good >= 0.5 * total and (declared in (None, "utf-8") or good >= 0.9 * total):
        return body.decode("utf-8", _REPAIR), (
            f"charset: {total - good} of {total} non-ASCII runs are not UTF-8; decoded as utf-8,"
            " those bytes as windows-1252"
        )
    fallback = next((c for c in (http, meta) if c and c != "utf-8"), "cp1252")
    note = (
        f"charset: declared utf-8 but the bytes are not UTF-8; decoded as {fallback}"
        if declared == "utf-8"
        else None
    )
    return body.decode(fallback, "replace"), note
