"""Extraction stage: one fetched HTML page -> one Article (archive/records.py).

Rooms: `article` (the entry points and the order of work), `metadata` (JSON-LD, meta tags,
dates and their source), `blocks` (trafilatura's body as typed blocks), `summary` (the
key-points box), `page_kind` (article, listing, challenge, not HTML), `common` (text helpers).
"""

from pipelines.extract.article import EXTRACTOR_VERSION, extract_article, extract_with_tree
from pipelines.extract.blocks import TRAFILATURA_OPTIONS
from pipelines.extract.metadata import parse_date, url_date
from pipelines.extract.page_kind import classify_page

__all__ = [
    "EXTRACTOR_VERSION",
    "TRAFILATURA_OPTIONS",
    "classify_page",
    "extract_article",
    "extract_with_tree",
    "parse_date",
    "url_date",
]
