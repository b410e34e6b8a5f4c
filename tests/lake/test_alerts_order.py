"""Why a lake alert's watermark is a snapshot, not an article id: two writers settle their
batches out of id order (the lower id's settle transaction still open while the higher one
commits), the alert matches in between, and the lower article is still alerted on, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from archive.lake import search_index as lake_search
from archive.lake.connect import connect_lake_read
from archive.lake.home import HOME_ENV
from archive.target import LakeTarget
from crawler.alerts.outbox import feed_file
from crawler.alerts.service import AlertService
from crawler.outlets import load_config
from tests.alertpeers import WebhookReceiver
from tests.conftest import outlet_config, run_cli
from tests.fakeweb import FakeWeb
from tests.test_alerts import drive

QUERY = "municipales climate"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def test_a_batch_settled_after_a_later_one_is_still_alerted_on(
    lake: tuple[str, LakeTarget],
    fake_outlet: FakeWeb,
    hook: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, target = lake
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    config = tmp_path / "outlets.toml"
    config.write_text(
        outlet_config(fake_outlet.base)
        + f'\n[[alert]]\nname = "order"\nquery = "{QUERY}"\nwebhook = "{hook.url}"\n'
    )
    crawl = run_cli("crawl", "--config", str(config), "--db", url)
    assert crawl.returncode == 0, crawl.stderr
    found = json.loads(run_cli("search", QUERY, "--db", url, "--format", "json").stdout)
    ids = sorted(h["id"] for h in found)
    low, high = ids[0], ids[-1]  # the others, settled before the alert starts, are not news
    # their batches not settled yet: out of the index (a settle writes them back, below)
    with psycopg.connect(target.libpq()) as pg:
        pg.execute("DELETE FROM mediawatch.search_index WHERE article_id = ANY(%s)", [[low, high]])
    loaded = load_config(config)
    service = AlertService(url, lambda: loaded)
    lake_con = connect_lake_read(target)
    try:
        drive(service, feed_file(url, "order").exists, 60)  # started before either settles
        slow = psycopg.connect(target.libpq())  # the writer of `low`: its settle still open
        with psycopg.connect(target.libpq()) as fast:  # the writer of `high`: settles first
            lake_search.index_from_lake(slow, lake_con, [low], lake_search.UNACCENTED)
            lake_search.index_from_lake(fast, lake_con, [high], lake_search.UNACCENTED)
        service.ingested()
        drive(service, lambda: len(hook.requests) == 1, 60)
        assert hook.requests[0][1]["articles"][0]["id"] == high
        slow.commit()  # `low` settles after `high` was alerted on: its id is below the newest
        slow.close()
        service.ingested()
        drive(service, lambda: len(hook.requests) == 2, 60)
        assert service.wait_idle(5.0)
        drive(service, lambda: not service.wants_archive())
    finally:
        lake_con.close()
        service.close()
    assert sorted(body["articles"][0]["id"] for _, body in hook.requests) == [low, high]
    assert len(set(hook.keys())) == 2
