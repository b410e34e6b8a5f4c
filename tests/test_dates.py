"""One date reader for every stage: a date in a feed, in a page and in a stored record means
the same instant, and the same implausible dates are refused everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from archive.dates import iso_date, parse_datetime, stored
from crawler.spiders.outlet import _iso as feed_date
from pipelines.extract import parse_date as page_date

SAMPLES = [
    "2024-05-17T10:00:00Z",
    "2024-05-17T12:00:00+02:00",
    "Fri, 17 May 2024 10:00:00 GMT",
    "May 17, 2024 10:00",
    "2024-05-17",
    "1989-12-31T23:00:00+00:00",
    "not a date",
    "",
]


def test_feed_page_and_record_read_a_date_alike() -> None:
    for value in SAMPLES:
        assert feed_date(value) == page_date(value) == iso_date(value), value
    assert page_date("Fri, 17 May 2024 10:00:00 GMT") == "2024-05-17T10:00:00+00:00"
    assert page_date("May 17, 2024 10:00") == "2024-05-17T10:00:00+00:00"  # free text, naive: UTC


def test_implausible_dates_are_refused_everywhere() -> None:
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert iso_date(later) is None and feed_date(later) is None
    assert iso_date("1989-12-31T23:00:00+00:00") is None
    assert iso_date("x" * 65 + " 2024") is None, "a long text is prose, not a date"


def test_stored_dates_keep_their_instant() -> None:
    assert stored("2024-05-17T12:00:00+02:00") == datetime(2024, 5, 17, 10, tzinfo=UTC)
    assert stored("2024-05-17T10:00:00") == datetime(2024, 5, 17, 10, tzinfo=UTC)
    assert stored(None) is None and stored(17) is None and stored("garbage") is None
    assert parse_datetime("May 17, 2024") is None, "free text only when asked (lenient)"
