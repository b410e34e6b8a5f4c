"""A crawl over its memory budget is stopped inside its own process and recorded with why;
the daemon goes on scheduling (issue 13, item 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import config_file, serving_outlet
from tests.fakeweb import FakeWeb
from tests.test_daemon import Daemon, rows, wait_for


@pytest.fixture
def courrier() -> Iterator[FakeWeb]:
    with serving_outlet() as web:
        yield web


def test_the_daemon_goes_on_after_a_crawl_over_its_memory_budget(
    courrier: FakeWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A budget every crawl is over at once: each run is stopped by its own process.
    monkeypatch.setenv(
        "MEDIAWATCH_SCRAPY_SETTINGS",
        json.dumps(
            {
                "MEMUSAGE_LIMIT_MB": 1,
                "MEMUSAGE_CHECK_INTERVAL_SECONDS": 0.2,
                "MEDIAWATCH_WORKERS": 0,
            }
        ),
    )
    config = config_file(tmp_path, courrier.base, extra='min_interval = "1s"')
    db = tmp_path / "data" / "archive.duckdb"
    daemon = Daemon(config, db).start()
    try:
        runs = wait_for(
            "two runs stopped over the memory budget",
            lambda: (
                (
                    found := rows(
                        db,
                        "SELECT status, message FROM crawl_runs WHERE outlet = 'courrier' AND finished_at IS NOT NULL "
                        "ORDER BY started_at",
                    )
                )
                and len(found) >= 2
                and found
            ),
            timeout=90,
            daemon=daemon,
        )
        assert all(run == ("failed", "memusage_exceeded") for run in runs), runs
        assert daemon.alive()
    finally:
        code, _ = daemon.stop()
    assert code == 0, daemon.log()[-3000:]
