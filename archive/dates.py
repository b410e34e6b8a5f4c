"""The one date reader of every stage: feed and sitemap entries (spider), page metadata
(extraction) and stored records (ingest) read dates the same way, so a date never changes
meaning between the crawl and the archive.

A stored date always carries an offset (naive values are taken as UTC) and is plausible:
not before 1990, not more than 2 days ahead (template defaults, typos and embargo
placeholders are not publication dates)."""

from __future__ import annotations

import re
import time as _time
import warnings
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

MIN_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
_MAX_CHARS = 64  # a longer "date" is prose, not a date: dateutil would find one in anything


def parse_datetime(value: Any, *, lenient: bool = False) -> datetime | None:
    """An aware datetime from ISO 8601 / W3C, RFC 822 (feeds), a datetime or a struct_time;
    `lenient` also tries dateutil on free text with a year in it ("May 17, 2024 10:00 IST")."""
    dt: datetime | None = None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, _time.struct_time):
        dt = datetime(*value[:6], tzinfo=UTC)
    elif isinstance(value, str):
        dt = _from_text(value.strip(), lenient)
    if dt is None:
        return None
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _from_text(s: str, lenient: bool) -> datetime | None:
    if not s or len(s) > _MAX_CHARS:
        return None
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(s)  # RFC 822, as feeds write it
    except (TypeError, ValueError, IndexError):
        pass
    if lenient and re.search(r"\d{4}", s):
        from dateutil import parser as du_parser  # installed with htmldate; only for free text

        try:
            with warnings.catch_warnings():  # unknown zone names ("IST"): taken as UTC
                warnings.simplefilter("ignore")
                return du_parser.parse(s)
        except (ValueError, OverflowError, TypeError):
            return None
    return None


def plausible(dt: datetime | None, now: datetime | None = None) -> datetime | None:
    """The date when it can be a publication date, else None."""
    if dt is None:
        return None
    try:
        if dt < MIN_DATE or dt > (now or datetime.now(UTC)) + FUTURE_SLACK:
            return None
    except (OverflowError, ValueError):
        return None
    return dt


def iso_date(value: Any, now: datetime | None = None, *, lenient: bool = True) -> str | None:
    """A plausible date as an ISO 8601 string with offset (what records carry), or None."""
    dt = plausible(parse_datetime(value, lenient=lenient), now)
    return dt.isoformat() if dt else None


def stored(value: Any) -> datetime | None:
    """A record's ISO date as the archive stores it; no plausibility check (the record's
    producer applied it, and fetched_at / started_at are our own clock)."""
    if not value:
        return None
    return parse_datetime(value) if isinstance(value, str | datetime) else None
