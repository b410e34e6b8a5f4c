"""Alerts (issue #16): config validation, matching as the search matches, and delivery
through the daemon's alert service to real peers on 127.0.0.1 (a webhook receiver, an SMTP
server, the Atom file read back by feedparser), with syndicated copies grouped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from archive.alerts import IN_DOUBT, AlertSpec, matches
from archive.db import writer
from archive.ingest import ingest_records
from archive.search import load_fts, search
from archive.search_syntax import parse_query
from crawler.alerts.channels import feed_path
from crawler.alerts.service import AlertService
from crawler.outlets import Config, ConfigError, load_config
from tests.alertpeers import SmtpServer, WebhookReceiver
from tests.conftest import rows, run_cli
from tests.test_e2e_dedup import WIRE, page
from tests.test_ingest import fixture, page_record
from tests.test_query import build_archive
from tests.test_serve import start_server, stop

OUTLETS = """
[[outlet]]
name = "agency"
feeds = ["http://agency.example/feed.xml"]

[[outlet]]
name = "paper"
feeds = ["http://paper.example/feed.xml"]
"""
AGENCY_URL = "http://agency.example/2024/06/04/rhine-water-deal"
PAPER_URL = "http://paper.example/world/2024/06/04/water-accord"


def write_config(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "outlets.toml"
    path.write_text(OUTLETS + alerts, encoding="utf-8")
    return path


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,key,says",
    [
        ('query = "rhine"\nwebhok = "http://h.example/x"', "webhok", "unknown key (did you mean 'webhook'?)"),
        ("query = '\"rhine water'", "query", "unclosed quote"),
        ('query = "-paris"', "query", "finds nothing"),
        ('query = "rhine AND"', "query", "'AND' needs a word on each side"),
        ('query = "rhine -x"', "query", "no word of 2 to 40 letters"),
        ('query = "rhine"\noutlets = ["papper"]', "outlets", "unknown outlet 'papper' (did you mean 'paper'?)"),
        ('query = "rhine"\nwebhook = "ftp://h.example/x"', "webhook", "not an http(s) URL"),
        ('query = "rhine"\nlanguages = ["french"]', "languages", "ISO 639"),
        ('query = "rhine"\nemail = {host = "smtp.example.org", from = "mw@example.org", to = ["desk.example.org"]}',
         "email.to", "not an e-mail address: 'desk.example.org'"),
        ('query = "rhine"\nemail = {host = "smtp.example.org", from = "mw@@example.org", to = "d@example.org"}',
         "email.from", "not an e-mail address"),
        ('query = "rhine"\nemail = {host = "smtp.example.org", port = 99999, from = "a@example.org", to = "d@example.org"}',
         "email.port", "must be a port number"),
        ('query = "rhine"\nemail = {host = "smtp.example.org", from = "a@example.org", to = "d@example.org", user = "x"}',
         "email.user", "unknown key"),
        ('query = "rhine"\nretry = "soon"', "retry", "expected a duration"),
        ("webhook = \"http://h.example/x\"", "query", "required"),
    ],
)  # fmt: skip
def test_invalid_alert_config_is_refused_naming_file_alert_and_key(tmp_path: Path, body: str, key: str,
                                                                   says: str) -> None:  # fmt: skip
    path = write_config(tmp_path, f'\n[[alert]]\nname = "rhine"\n{body}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: alert 'rhine': key '{key}': "), message
    assert says in message and "\n" not in message


def test_alert_names_are_checked_and_unique(tmp_path: Path) -> None:
    path = write_config(tmp_path, '\n[[alert]]\nname = "Rhine deal"\nquery = "rhine"\n')
    with pytest.raises(ConfigError, match=r"alert 'Rhine deal': key 'name': must match"):
        load_config(path)
    path = write_config(
        tmp_path, '\n[[alert]]\nname = "a"\nquery = "x1"\n\n[[alert]]\nname = "a"\nquery = "y1"\n'
    )
    with pytest.raises(ConfigError, match=r"alert 'a': key 'name': duplicate alert name"):
        load_config(path)


def test_a_valid_alert_is_compiled_once_with_its_channels(tmp_path: Path) -> None:
    path = write_config(tmp_path, """
[[alert]]
name = "rhine"
query = '"water deal" +rhine -football'
outlets = ["paper"]
languages = ["EN"]
webhook = "https://hooks.example.org/mw"
email = { host = "smtp.example.org", port = 587, from = "Mediawatch <mw@example.org>", to = "desk@example.org", starttls = true }
""")  # fmt: skip
    (alert,) = load_config(path).alerts
    assert alert.spec.channels == ("atom", "webhook", "email")
    assert alert.spec.outlets == ("paper",) and alert.spec.languages == ("en",)
    assert (
        alert.email is not None and alert.email.to == ("desk@example.org",) and alert.email.starttls
    )
    assert alert.email.sender == "Mediawatch <mw@example.org>"
    assert ('"water deal"'.strip('"'), "phrase") in alert.spec.query.items


def test_cli_refuses_a_bad_alert_like_any_config_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '\n[[alert]]\nname = "rhine"\nquery = "rhine"\nemail = "desk@example.org"\n'
    )
    r = run_cli("outlets", "--config", str(path))
    assert r.returncode == 2
    assert (
        r.stderr == f"error: {path}: alert 'rhine': key 'email': must be a table: "
        "{ host = ..., port = 587, from = ..., to = [...] }\n"
    )


# -- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ['"élections municipales"', "élection -paris", "+municipales élection",
                               "élection AND sondage", "sondage OR boulangers", "élec*", "+élection boulang*",
                               "élections municipales", "voters", "wahl", "rain"])  # fmt: skip
def test_an_alert_matches_what_the_search_finds(tmp_path: Path, q: str) -> None:
    db = build_archive(tmp_path / "archive.duckdb")
    with writer(db) as con:
        load_fts(con)
        found = [
            r[0] for r in con.execute("SELECT article_id FROM search_articles(?)", [q]).fetchall()
        ]
        assert found, q  # every query here finds something: the comparison means something
        assert sorted(
            m[0] for m in matches(con, AlertSpec("a", parse_query(q)), 0, 10**6)
        ) == sorted(found)
        newer = [i for i in found if i > 2]  # only past the watermark
        assert sorted(
            m[0] for m in matches(con, AlertSpec("a", parse_query(q)), 2, 10**6)
        ) == sorted(newer)
        spec = AlertSpec("a", parse_query(q), outlets=("lemonde", "bbc"), languages=("fr",))
        hits = search(con, q, outlets=["lemonde", "bbc"], languages=["fr"], limit=100)
        assert sorted(m[0] for m in matches(con, spec, 0, 10**6)) == sorted(h.id for h in hits)


# -- delivery ----------------------------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def alert_config(
    tmp_path: Path, hook: WebhookReceiver, smtp: SmtpServer | None = None, extra: str = ""
) -> Config:
    email = (
        (
            f'email = {{ host = "127.0.0.1", port = {smtp.port}, from = "mw@example.org", '
            f'to = ["desk@example.org", "night@example.org"] }}'
        )
        if smtp
        else ""
    )
    return load_config(write_config(tmp_path, f"""
[[alert]]
name = "rhine"
query = "rhine water"
webhook = "{hook.url}"
{email}
retry = 0.3
{extra}
"""))  # fmt: skip


def ingest(db: Path, *records: dict[str, Any]) -> None:
    with writer(db) as con:
        ingest_records(con, list(records))


def agency_story() -> dict[str, Any]:
    return page_record(
        AGENCY_URL,
        page("Rhine states reach water deal", WIRE, "2024-06-04T09:00:00Z"),
        outlet="agency",
    )


def paper_copy() -> dict[str, Any]:
    """The paper's cut copy of the wire story: the same cluster (archive/dedup.py)."""
    return page_record(
        PAPER_URL,
        page(
            "Upstream and downstream, a deal on the river at last", WIRE[:3], "2024-06-04T11:30:00Z"
        ),
        outlet="paper",
    )


def drive(service: AlertService, until: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Run the service as the archive writer does (a step when it has work) until `until()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.wants_archive():
            service.step()
        value = until()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def outbox(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT channel, status, attempts, cluster_id, article_id, last_error FROM alert_deliveries "
        "ORDER BY channel",
    )


def test_each_match_is_delivered_once_per_channel_and_a_syndicated_copy_is_grouped(
        tmp_path: Path, hook: WebhookReceiver, smtp: SmtpServer) -> None:  # fmt: skip
    db = tmp_path / "archive.duckdb"
    config = alert_config(tmp_path, hook, smtp)
    service = AlertService(db, lambda: config)
    drive(service, lambda: feed_path(db, "rhine").exists())  # started: an empty feed, the watermark
    assert feedparser.parse(feed_path(db, "rhine").read_bytes()).entries == []

    ingest(
        db,
        agency_story(),
        page_record(
            "http://agency.example/2024/05/18/climate-summit",
            fixture("climate.html"),
            outlet="agency",
        ),
    )
    service.ingested()
    drive(
        service,
        lambda: (
            len(hook.requests) == 1
            and len(smtp.messages) == 1
            and all(r[1] == "sent" for r in outbox(db))
            and len(outbox(db)) == 3
        ),
    )
    key, body = hook.requests[0]
    (article_id,) = rows(db, "SELECT id FROM articles WHERE url = ?", [AGENCY_URL])[0]
    webhook_id = rows(db, "SELECT id FROM alert_deliveries WHERE channel = 'webhook'")[0][0]
    assert key == str(webhook_id) == str(body["delivery_id"])
    assert body["alert"] == "rhine" and [a["url"] for a in body["articles"]] == [AGENCY_URL]
    assert (
        body["articles"][0]["id"] == article_id
        and "water" in body["articles"][0]["snippet"].lower()
    )
    mail = smtp.messages[0]
    assert mail["Subject"] == "[mediawatch] rhine: Rhine states reach water deal"
    assert smtp.handler.recipients[0] == ["desk@example.org", "night@example.org"]
    assert AGENCY_URL in mail.get_payload() and mail["Message-ID"].startswith(
        "<mediawatch-alert-rhine-"
    )
    feed = feedparser.parse(feed_path(db, "rhine").read_bytes())
    assert not feed.bozo and feed.feed.title == "mediawatch alert: rhine"
    assert [(e.link, e.title) for e in feed.entries] == [
        (AGENCY_URL, "Rhine states reach water deal")
    ]
    served = start_server(db)  # mediawatch serve hands out the file the daemon wrote
    try:
        status, headers, body_text = served.get("/alerts/rhine.atom")
        assert status == 200 and headers["content-type"].startswith("application/atom+xml")
        assert body_text.encode() == feed_path(db, "rhine").read_bytes()
        assert [e.link for e in feedparser.parse(body_text).entries] == [AGENCY_URL]
        assert served.get("/alerts/nobody.atom")[0] == 404
        assert served.get("/alerts/..%2F..%2Farchive.atom")[0] == 404
    finally:
        stop(served)

    ingest(db, paper_copy())  # the paper runs the wire story: grouped, not sent again
    service.ingested()
    drive(service, lambda: rows(db, "SELECT count(*) FROM alert_matches")[0][0] == 2)
    time.sleep(0.5)
    drive(service, lambda: not service.wants_archive())
    assert len(hook.requests) == 1 and len(smtp.messages) == 1
    (entry,) = feedparser.parse(
        feed_path(db, "rhine").read_bytes()
    ).entries  # the copy, in the entry
    assert entry.link == AGENCY_URL and f"Also published by: paper {PAPER_URL}" in entry.summary
    clusters = rows(db, "SELECT DISTINCT cluster_id FROM alert_matches")
    assert len(clusters) == 1 and len(outbox(db)) == 3
    assert [(r[0], r[1], r[2]) for r in outbox(db)] == [
        ("atom", "sent", 1),
        ("email", "sent", 1),
        ("webhook", "sent", 1),
    ]
    # what the user sees of it: one alert, two articles in one cluster, nothing waiting
    listed = json.loads(run_cli("alerts", "--config", str(config.path), "--db", str(db), "--format",
                                "json").stdout)  # fmt: skip
    assert listed[0]["matched_articles"] == 2 and listed[0]["clusters"] == 1
    assert {
        ch: (c["sent"], c["waiting"], c["failed"]) for ch, c in listed[0]["channels"].items()
    } == {"atom": (1, 0, 0), "webhook": (1, 0, 0), "email": (1, 0, 0)}


def test_a_failing_webhook_is_retried_with_backoff_and_the_attempts_are_recorded(
    tmp_path: Path,
) -> None:
    hook = WebhookReceiver(statuses=[500, 503]).start()
    try:
        db = tmp_path / "archive.duckdb"
        config = alert_config(tmp_path, hook)
        service = AlertService(db, lambda: config)
        drive(service, lambda: feed_path(db, "rhine").exists())
        ingest(db, agency_story())
        service.ingested()
        started = time.monotonic()
        drive(
            service,
            lambda: rows(
                db,
                "SELECT attempts, last_error FROM alert_deliveries "
                "WHERE channel = 'webhook' AND status = 'pending' AND attempts = 1",
            ),
        )
        (error,) = rows(db, "SELECT last_error FROM alert_deliveries WHERE channel = 'webhook'")[0]
        assert error == "webhook " + hook.url.split("/")[2] + " answered HTTP 500"
        # `alerts test` shows the waiting delivery as it will go: the very JSON the receiver got
        r = run_cli(
            "alerts",
            "test",
            "rhine",
            "--config",
            str(config.path),
            "--db",
            str(db),
            "--format",
            "json",
        )
        (waiting,) = [w for w in json.loads(r.stdout)["waiting"] if w["channel"] == "webhook"]
        assert waiting["payload"] == hook.requests[0][1] and waiting["last_error"] == error
        assert waiting["attempts"] == 1 and waiting["status"] == "pending"
        drive(
            service,
            lambda: rows(
                db, "SELECT 1 FROM alert_deliveries WHERE channel = 'webhook' AND status = 'sent'"
            ),
        )
        elapsed = time.monotonic() - started
        assert rows(
            db, "SELECT attempts, status FROM alert_deliveries WHERE channel = 'webhook'"
        ) == [(3, "sent")]
        assert elapsed >= 0.3 + 0.6  # waited 0.3 s, then twice that
        assert [k for k, _ in hook.requests] == [
            hook.requests[0][0]
        ] * 3  # the same key on every attempt
    finally:
        hook.stop()


def test_a_delivery_that_keeps_failing_gives_up_and_says_so(tmp_path: Path) -> None:
    hook = WebhookReceiver(statuses=[500] * 10).start()
    try:
        db = tmp_path / "archive.duckdb"
        config = alert_config(tmp_path, hook, extra="max_attempts = 2")
        service = AlertService(db, lambda: config)
        drive(service, lambda: feed_path(db, "rhine").exists())
        ingest(db, agency_story())
        service.ingested()
        drive(service, lambda: rows(db, "SELECT 1 FROM alert_deliveries WHERE status = 'failed'"))
        assert rows(
            db, "SELECT attempts, status FROM alert_deliveries WHERE channel = 'webhook'"
        ) == [(2, "failed")]
        (event,) = rows(db, "SELECT message FROM daemon_events WHERE kind = 'alert_failed'")[0]
        assert event.startswith("rhine: webhook delivery") and "gave up after 2 attempts" in event
        r = run_cli("alerts", "--config", str(config.path), "--db", str(db), "--format", "json")
        webhook = json.loads(r.stdout)[0]["channels"]["webhook"]
        assert (webhook["sent"], webhook["failed"]) == (0, 1) and "HTTP 500" in webhook[
            "last_error"
        ]
        table = run_cli(
            "alerts", "--config", str(config.path), "--db", str(db), env={"COLUMNS": "200"}
        ).stdout
        assert "rhine: rhine water; 1 articles matched" in table and "answered HTTP 500" in table
    finally:
        hook.stop()


def test_a_delivery_in_doubt_after_a_crash_is_sent_again_under_the_same_key(tmp_path: Path,
                                                                             hook: WebhookReceiver) -> None:  # fmt: skip
    db = tmp_path / "archive.duckdb"
    config = alert_config(tmp_path, hook)
    dead = AlertService(db, lambda: config)
    drive(dead, lambda: feed_path(db, "rhine").exists())
    ingest(db, agency_story())
    hook.hold.set()  # the first daemon's request hangs: it "dies" with the delivery in flight
    dead.ingested()
    drive(dead, lambda: hook.arrived.is_set())
    assert rows(db, "SELECT status FROM alert_deliveries WHERE channel = 'webhook'") == [
        ("sending",)
    ]
    hook.hold.clear()
    restarted = AlertService(db, lambda: config)  # the next daemon: never hears from the first
    drive(
        restarted,
        lambda: rows(
            db, "SELECT 1 FROM alert_deliveries WHERE channel = 'webhook' AND status = 'sent'"
        ),
    )
    hook.release.set()  # the first request completes too, late: the receiver saw the key twice
    time.sleep(0.3)
    assert rows(
        db, "SELECT attempts, status, last_error FROM alert_deliveries WHERE channel = 'webhook'"
    ) == [(2, "sent", IN_DOUBT)]
    keys = hook.keys()
    assert (
        list(keys.values()) == [2] and len(hook.unique()) == 1
    )  # a deduping receiver sees it once


def test_alerts_test_shows_what_would_be_sent_now(tmp_path: Path, hook: WebhookReceiver) -> None:
    db = tmp_path / "archive.duckdb"
    config = alert_config(tmp_path, hook)
    ingest(db, agency_story())
    r = run_cli("alerts", "test", "rhine", "--config", str(config.path), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "has not started this alert" in r.stdout and AGENCY_URL in r.stdout
    service = AlertService(db, lambda: config)
    drive(service, lambda: feed_path(db, "rhine").exists())  # starts after the agency's story
    ingest(db, paper_copy())  # archived, not matched yet: what the next step would queue
    r = run_cli(
        "alerts", "test", "rhine", "--config", str(config.path), "--db", str(db), "--format", "json"
    )
    preview = json.loads(r.stdout)
    assert preview["started"] and preview["waiting"] == []
    assert [n["article"]["url"] for n in preview["new"]] == [PAPER_URL]
    assert preview["targets"]["webhook"] == f"POST {hook.url}" and hook.requests == []
    r = run_cli("alerts", "test", "rhin", "--config", str(config.path), "--db", str(db))
    assert (
        r.returncode == 2
        and r.stderr == f"error: {config.path}: no alert named 'rhin' (known: rhine)\n"
    )
    assert "Example:" in run_cli("alerts", "test", "--help").stdout
    assert "Example:" in run_cli("alerts", "--help").stdout


def test_a_new_alert_alerts_on_what_comes_next_not_on_the_backlog(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    db = tmp_path / "archive.duckdb"
    ingest(db, agency_story())  # archived before the alert exists
    holder = {"config": load_config(write_config(tmp_path, ""))}
    service = AlertService(db, lambda: holder["config"])
    assert (
        not service.wants_archive()
    )  # no alert: the daemon's writer never opens the archive for them
    holder["config"] = alert_config(tmp_path, hook)  # added by a config reload
    drive(service, lambda: feed_path(db, "rhine").exists())
    assert rows(db, "SELECT count(*) FROM alert_deliveries") == [(0,)]
    ingest(db, paper_copy())
    service.ingested()
    drive(service, lambda: len(hook.requests) == 1)
    assert [a["url"] for a in hook.requests[0][1]["articles"]] == [PAPER_URL]


@pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS"
)  # loopback, a test password
def test_email_logs_in_with_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(login=("mw", "s3cret")).start()
    try:
        db = tmp_path / "archive.duckdb"
        config = load_config(write_config(tmp_path, f"""
[[alert]]
name = "rhine"
query = "rhine"
email = {{ host = "127.0.0.1", port = {server.port}, from = "mw@example.org", to = "desk@example.org", username = "mw", password_env = "MW_TEST_SMTP_PASSWORD" }}
retry = 0.2
"""))  # fmt: skip
        monkeypatch.delenv("MW_TEST_SMTP_PASSWORD", raising=False)
        service = AlertService(db, lambda: config)
        drive(service, lambda: feed_path(db, "rhine").exists())
        ingest(db, agency_story())
        service.ingested()
        drive(service, lambda: rows(db, "SELECT last_error FROM alert_deliveries WHERE channel = 'email' "
                                        "AND last_error IS NOT NULL"))  # fmt: skip
        (error,) = rows(db, "SELECT last_error FROM alert_deliveries WHERE channel = 'email'")[0]
        assert (
            error
            == f"smtp 127.0.0.1:{server.port}: environment variable MW_TEST_SMTP_PASSWORD is not set"
        )
        monkeypatch.setenv("MW_TEST_SMTP_PASSWORD", "s3cret")
        drive(service, lambda: len(server.messages) == 1)
        assert server.logins == [("mw", "s3cret")]
        assert rows(
            db, "SELECT status, attempts FROM alert_deliveries WHERE channel = 'email'"
        ) == [("sent", 2)]
    finally:
        server.stop()
