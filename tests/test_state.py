"""What a crawl reads from the archive before it starts (archive/state.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.db import writer
from archive.ingest import ingest_records
from archive.state import PERMANENT_SKIPS, load_crawl_state


@pytest.mark.parametrize("reason", ["pattern_timeout", "address_refused", "http_404"])
def test_a_skip_the_next_run_would_only_repeat_is_not_fetched_again(
    tmp_path: Path, reason: str
) -> None:
    db = tmp_path / "archive.duckdb"
    url = f"https://example.org/2024/01/01/{reason}"
    record = {
        "type": "page",
        "record_id": uuid.uuid4().hex,
        "run_id": "r1",
        "outlet": "o",
        "url": url,
        "final_url": url,
        "redirect_urls": [],
        "fetched_at": datetime.now(UTC).isoformat(),
        "status": None,
        "content_type": None,
        "hints": {},
        "skip_reason": reason,
        "detail": "why",
    }
    with writer(db) as con:
        ingest_records(con, [record])
    assert reason in PERMANENT_SKIPS
    assert url in load_crawl_state(db, "o").skip_urls
