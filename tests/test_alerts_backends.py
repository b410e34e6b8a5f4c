"""Alerts end to end on both backends (issue 15): a real crawl of an outlet on 127.0.0.1 into
the embedded file, then into a lake; the daemon's alert service matches what was archived as
`mediawatch search --db` finds it, posts it to a webhook on 127.0.0.1 and writes the Atom feed,
and `mediawatch alerts` shows it sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from archive.target import is_lake
from crawler.alerts.outbox import feed_file
from crawler.alerts.service import AlertService
from crawler.outlets import load_config
from tests.alertpeers import WebhookReceiver
from tests.conftest import outlet_config, run_cli
from tests.fakeweb import FakeWeb
from tests.test_alerts import drive

QUERY = "methane pledge"
TITLE = "Climate summit ends with a pledge on methane"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def entries(feed: Path) -> list[Any]:
    return list(feedparser.parse(feed.read_bytes()).entries)


def listed(config: Path, db: str) -> list[dict[str, Any]]:
    out = run_cli("alerts", "--config", str(config), "--db", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_crawled_article_is_alerted_once_by_webhook_and_feed(
    tmp_path: Path, backend: str, fake_outlet: FakeWeb, hook: WebhookReceiver
) -> None:
    config = tmp_path / "outlets.toml"
    config.write_text(
        outlet_config(fake_outlet.base)
        + f'\n[[alert]]\nname = "methane"\nquery = "{QUERY}"\nwebhook = "{hook.url}"\n'
    )
    loaded = load_config(config)
    if not is_lake(backend):
        Path(backend).parent.mkdir(parents=True, exist_ok=True)
    feed = feed_file(backend, "methane")
    service = AlertService(backend if is_lake(backend) else Path(backend), lambda: loaded)
    try:
        drive(service, feed.exists, 60)  # started: its watermark, an empty feed
        assert entries(feed) == []
        assert listed(config, backend)[0]["started"]

        crawl = run_cli("crawl", "--config", str(config), "--db", backend)
        assert crawl.returncode == 0, crawl.stderr
        found = json.loads(run_cli("search", QUERY, "--db", backend, "--format", "json").stdout)
        assert [h["title"] for h in found] == [TITLE], "what the search finds is what alerts"

        preview = run_cli("alerts", "test", "methane", "--config", str(config), "--db", backend,
                          "--format", "json")  # fmt: skip
        assert preview.returncode == 0, preview.stderr
        shown = json.loads(preview.stdout)  # archived, not matched yet: what would go
        assert shown["started"] and [n["article"]["title"] for n in shown["new"]] == [TITLE]

        service.ingested()
        drive(service, lambda: len(hook.requests) == 1 and entries(feed), 60)
        key, body = hook.requests[0]
        assert body["alert"] == "methane" and key == str(body["delivery_id"])
        assert [(a["title"], a["url"]) for a in body["articles"]] == [(TITLE, found[0]["url"])]
        assert "methane" in body["articles"][0]["snippet"].lower()
        assert [(e.title, e.link) for e in entries(feed)] == [(TITLE, found[0]["url"])]

        # the same crawl again archives nothing new: nothing more is sent
        again = run_cli("crawl", "--config", str(config), "--db", backend)
        assert again.returncode == 0, again.stderr
        service.ingested()
        assert service.wait_idle(5.0)  # the atom and webhook outcomes back from the sender
        drive(service, lambda: not service.wants_archive())
        assert len(hook.requests) == 1
    finally:
        service.close()
    (row,) = listed(config, backend)
    assert row["matched_articles"] == 1 and row["clusters"] == 1
    assert {ch: (c["sent"], c["waiting"], c["failed"]) for ch, c in row["channels"].items()} == {
        "atom": (1, 0, 0),
        "webhook": (1, 0, 0),
    }
    assert row["channels"]["atom"]["target"] == str(feed)


def test_a_delivery_that_keeps_failing_is_recorded_as_a_daemon_event(
    tmp_path: Path, backend: str, fake_outlet: FakeWeb
) -> None:
    """Given up after max_attempts: the delivery is 'failed' and a daemon_events row says
    which alert and why, on the lake as in the file (a user finds it with a query)."""
    hook = WebhookReceiver(statuses=[500] * 10).start()
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            outlet_config(fake_outlet.base) + f'\n[[alert]]\nname = "methane"\nquery = "{QUERY}"\n'
            f'webhook = "{hook.url}"\nmax_attempts = 2\nretry = "0.2s"\n'
        )
        loaded = load_config(config)
        if not is_lake(backend):
            Path(backend).parent.mkdir(parents=True, exist_ok=True)
        service = AlertService(backend if is_lake(backend) else Path(backend), lambda: loaded)
        try:
            drive(service, lambda: listed(config, backend)[0]["started"], 60)
            crawl = run_cli("crawl", "--config", str(config), "--db", backend)
            assert crawl.returncode == 0, crawl.stderr
            service.ingested()
            drive(service, lambda: listed(config, backend)[0]["channels"]["webhook"]["failed"], 60)
        finally:
            service.close()
    finally:
        hook.stop()
    events = run_cli("query", "--db", backend, "--format", "json",
                     "SELECT message FROM daemon_events WHERE kind = 'alert_failed'")  # fmt: skip
    assert events.returncode == 0, events.stderr
    (event,) = json.loads(events.stdout)
    assert event["message"].startswith("methane: webhook delivery"), event
    assert "gave up after 2 attempts" in event["message"] and "500" in event["message"]
