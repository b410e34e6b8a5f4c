"""Alerts of real `mediawatch run --db <lake>` daemons, each with its own home as on its own
machine: two daemons deliver each match once between them, and a kill -9 while a webhook
request is in flight leaves the delivery in doubt, sent again by the restarted daemon under the
same Idempotency-Key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import psycopg
import pytest

from archive.alerts import IN_DOUBT
from archive.target import LakeTarget
from tests.alertpeers import WebhookReceiver
from tests.conftest import outlet_config, run_cli
from tests.fakeweb import FakeWeb
from tests.lake.daemons import LakeDaemon
from tests.test_alerts_crash import QUERY, kill_during_request
from tests.test_daemon import ARTICLES, serving_courrier, wait_for

LEASE = ("--lease", "6s")  # a killed daemon's outlets are taken over quickly


@pytest.fixture
def courrier() -> Iterator[FakeWeb]:
    with serving_courrier() as web:
        yield web


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def write_config(tmp_path: Path, base: str, hook: WebhookReceiver) -> Path:
    config = tmp_path / "outlets.toml"
    config.write_text(
        outlet_config(base)
        + f'\n[[alert]]\nname = "news"\nquery = "{QUERY}"\nwebhook = "{hook.url}"\nretry = 0.5\n'
    )
    return config


def pg_rows(target: LakeTarget, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(target.libpq()) as pg:
        return list(pg.execute(sql).fetchall())


def done(target: LakeTarget) -> bool:
    """Every article archived and looked at by the alert (its watermark snapshot sees each
    one's settle), and every delivery of their matches sent."""
    indexed = pg_rows(target, "SELECT count(*) FROM mediawatch.search_index")[0][0]
    unseen = pg_rows(
        target,
        "SELECT count(*) FROM mediawatch.search_index s, mediawatch.alert_state a "
        "WHERE NOT pg_visible_in_snapshot(s.settled_xid, a.watermark)",
    )[0][0]
    pending, total = pg_rows(
        target,
        "SELECT count(*) FILTER (WHERE status <> 'sent'), count(*) FROM mediawatch.alert_deliveries",
    )[0]
    return bool(indexed >= ARTICLES and unseen == 0 and total > 0 and pending == 0)


def check_outbox(target: LakeTarget, url: str, hook: WebhookReceiver) -> dict[str, int]:
    """Nothing lost (every article the search finds is matched, every cluster has its atom and
    webhook deliveries, all sent) and the receiver has each delivery; webhook id -> attempts."""
    found = json.loads(run_cli("search", QUERY, "--db", url, "--format", "json").stdout)
    matched = pg_rows(target, "SELECT article_id, cluster_id FROM mediawatch.alert_matches")
    assert sorted(h["id"] for h in found) == sorted(r[0] for r in matched)
    assert len(found) >= 3, "the query matches most of the outlet's articles"
    clusters = {r[1] for r in matched}
    deliveries = pg_rows(
        target, "SELECT id, channel, cluster_id, status, attempts FROM mediawatch.alert_deliveries"
    )
    assert sorted((ch, c) for _, ch, c, _, _ in deliveries) == sorted(
        (ch, c) for ch in ("atom", "webhook") for c in clusters
    )
    assert {status for *_, status, _ in deliveries} == {"sent"}
    webhook = {str(i): n for i, ch, _, _, n in deliveries if ch == "webhook"}
    assert set(hook.unique()) == set(webhook)
    return webhook


def feed_ids(home: Path) -> list[str]:
    feed = feedparser.parse((home / "alerts" / "news.atom").read_bytes())
    assert not feed.bozo
    return sorted(e.id for e in feed.entries)


def test_two_daemons_on_one_lake_deliver_each_match_once(
    lake: tuple[str, LakeTarget], courrier: FakeWeb, hook: WebhookReceiver, tmp_path: Path
) -> None:
    url, target = lake
    config = write_config(tmp_path, courrier.base, hook)
    homes = [tmp_path / "home-a", tmp_path / "home-b"]
    daemons = [LakeDaemon(config, url, home, *LEASE).start() for home in homes]
    try:
        wait_for("both daemons' alerts started", lambda: all(
            (h / "alerts" / "news.atom").exists() for h in homes), 120, daemons[0])  # fmt: skip
        wait_for("every delivery sent", lambda: done(target), 150, daemons[0])
        time.sleep(2.0)  # a second sending of anything would show by now
        for d in daemons:
            d.stop_cleanly()
    finally:
        for d in daemons:
            d.kill()
    webhook = check_outbox(target, url, hook)
    assert set(hook.keys().values()) == {1}, "each delivery reached the receiver once"
    assert set(webhook.values()) == {1}, "and was attempted once"
    # each machine's feed, written by its daemon from the shared outbox
    entries = pg_rows(
        target, "SELECT cluster_id FROM mediawatch.alert_deliveries WHERE channel = 'atom'"
    )
    assert feed_ids(homes[0]) or feed_ids(homes[1])
    for home in homes:
        assert set(feed_ids(home)) <= {f"urn:mediawatch:alert:news:cluster:{c}" for (c,) in entries}


def test_kill_9_while_sending_leaves_the_delivery_in_doubt_sent_again(
    lake: tuple[str, LakeTarget], courrier: FakeWeb, hook: WebhookReceiver, tmp_path: Path
) -> None:
    url, target = lake
    config = write_config(tmp_path, courrier.base, hook)
    home = tmp_path / "home"
    hook.hold.set()  # the first webhook request hangs in the receiver: the kill lands during it
    first = LakeDaemon(config, url, home, *LEASE).start()
    kill_during_request(first, hook)
    in_flight = pg_rows(
        target, "SELECT id FROM mediawatch.alert_deliveries WHERE status = 'sending' "
        "AND channel = 'webhook'",
    )  # fmt: skip
    assert in_flight, "the killed daemon's delivery stays claimed, 'sending': in doubt"
    second = LakeDaemon(config, url, home, *LEASE).start()
    try:
        wait_for("every delivery sent", lambda: done(target), 150, second)
        second.stop_cleanly()
    finally:
        second.kill()
    webhook = check_outbox(target, url, hook)
    doubt = {str(r[0]) for r in in_flight}  # one step may claim several: one was being sent
    assert all(webhook[k] > 1 for k in doubt), "each delivery in doubt was attempted again"
    resent = {k for k, n in hook.keys().items() if n > 1}
    assert resent and resent <= doubt, "the one sent at the kill arrived twice, nothing else did"
    assert "in doubt after an unclean stop" in second.log()
    said = pg_rows(target, "SELECT DISTINCT last_error FROM mediawatch.alert_deliveries "
                           "WHERE channel = 'webhook' AND attempts > 1")  # fmt: skip
    assert said == [(IN_DOUBT,)]
    assert feed_ids(home)
