"""kill -9 of a real `mediawatch run` daemon in the middle of alert deliveries, twice (with a
webhook request in flight, then right after the receiver answered, before the daemon could
record it), then a restart: nothing lost, nothing doubled for a receiver that dedupes by
Idempotency-Key, and the outbox never shows a delivery twice as sent."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from crawler.alerts.channels import feed_path
from tests.alertpeers import WebhookReceiver
from tests.conftest import outlet_config, rows
from tests.fakeweb import FakeWeb
from tests.test_daemon import ARTICLES, Daemon, serving_courrier, wait_for


@pytest.fixture
def courrier() -> Iterator[FakeWeb]:
    with serving_courrier() as web:
        yield web


QUERY = "municipales climate exporte cycling trump"


def kill_during_request(daemon: Daemon, hook: WebhookReceiver) -> None:
    """kill -9 the daemon while the receiver holds its webhook request, then let the request
    end: the receiver got it, the daemon never heard."""
    try:
        wait_for("a webhook request in flight", hook.arrived.is_set, 120, daemon)
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.proc.wait()  # type: ignore[union-attr]
    finally:
        daemon.kill()
    hook.hold.clear()
    hook.release.set()


def test_kill_9_during_delivery_loses_and_doubles_nothing(
    courrier: FakeWeb, tmp_path: Path
) -> None:
    hook = WebhookReceiver().start()
    config = tmp_path / "outlets.toml"
    config.write_text(outlet_config(courrier.base) + f"""
[[alert]]
name = "news"
query = "{QUERY}"
webhook = "{hook.url}"
retry = 0.5
""")  # fmt: skip
    db = tmp_path / "archive.duckdb"
    try:
        hook.hold.set()  # the first delivery hangs in the receiver: the kill lands during it
        first = Daemon(config, db).start()
        kill_during_request(first, hook)
        time.sleep(0.5)
        hook.answered.clear()

        second = Daemon(config, db).start()
        try:  # a delivery answered 200, killed before the daemon records it as sent
            wait_for("a webhook answered", hook.answered.is_set, 120, second)
            os.kill(second.pid, signal.SIGKILL)
            second.proc.wait()  # type: ignore[union-attr]
        finally:
            second.kill()

        third = Daemon(config, db).start()
        try:
            wait_for("every article archived", lambda: rows(db, "SELECT count(*) FROM articles")[0][0] >= ARTICLES,
                     120, third)  # fmt: skip
            wait_for("every delivery sent", lambda: rows(
                db, "SELECT count(*) FROM alert_deliveries WHERE status <> 'sent'")[0][0] == 0
                and rows(db, "SELECT watermark FROM alert_state")[0][0] == rows(
                    db, "SELECT max(id) FROM articles")[0][0], 90, third)  # fmt: skip
            third.stop_cleanly()
        finally:
            third.kill()
        log = first.log() + second.log() + third.log()
    finally:
        hook.stop()

    # nothing lost: every cluster of the archive's matching articles has its delivery, sent
    con_rows = rows(db, "SELECT DISTINCT coalesce(a.cluster_id, a.id) FROM articles a "
                        "WHERE a.id IN (SELECT article_id FROM alert_matches)")  # fmt: skip
    clusters = {r[0] for r in con_rows}
    assert len(clusters) >= 3, "the query should match most of the outlet's articles"
    deliveries = rows(
        db, "SELECT id, channel, cluster_id, status, attempts FROM alert_deliveries ORDER BY id"
    )
    assert {(ch, c) for _, ch, c, _, _ in deliveries} == {
        (ch, c) for ch in ("atom", "webhook") for c in clusters
    }
    assert all(status == "sent" for _, _, _, status, _ in deliveries)
    # never twice 'sent': one row per (alert, channel, cluster)
    assert (
        rows(
            db,
            "SELECT alert, channel, cluster_id FROM alert_deliveries GROUP BY ALL HAVING count(*) > 1",
        )
        == []
    )
    # the receiver, deduping by Idempotency-Key, has each delivery once, each cluster once
    webhook = {str(i): c for i, ch, c, _, _ in deliveries if ch == "webhook"}
    unique = hook.unique()
    assert set(unique) == set(webhook)
    assert sorted(body["cluster_id"] for body in unique.values()) == sorted(webhook.values())
    resent = {k for k, n in hook.keys().items() if n > 1}
    assert resent, "the kills landed during deliveries: some were sent again after a restart"
    attempts = {str(i): n for i, ch, _, _, n in deliveries if ch == "webhook"}
    assert all(attempts[k] > 1 for k in resent)  # a second copy only where the outbox says so
    assert "in doubt after an unclean stop" in log
    # the Atom feed: one entry per cluster, read back by feedparser
    feed = feedparser.parse(feed_path(db, "news").read_bytes())
    assert not feed.bozo
    assert sorted(e.id for e in feed.entries) == sorted(
        f"urn:mediawatch:alert:news:cluster:{c}" for c in clusters
    )
