"""Text helpers shared by the extraction's rooms."""

from __future__ import annotations

import html as html_lib
import logging
import re
from typing import Any

LOG = logging.getLogger(__name__)


ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "blogposting",
    "liveblogposting", "scholarlyarticle", "techarticle", "socialmediaposting", "report",
    "satiricalarticle", "advertisercontentarticle", "askpublicnewsarticle", "posting",
}  # fmt: skip


LISTING_TYPES = {"collectionpage", "itemlist", "searchresultspage", "website"}


_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")


_WORD = re.compile(r"\w+")


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
