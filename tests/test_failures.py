"""Why a run failed, in one line, from the first failed run (issue 18 item 2), and one
definition of a failed run for both views (issue 14)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import scrapy.exceptions as sx
from OpenSSL import SSL
from twisted.internet import error as terror
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseNeverReceived

from crawler.failures import FailureLog, classify
from tests.conftest import run_cli
from tests.fakeweb import FakeWeb


def test_download_errors_are_classified() -> None:
    assert classify(terror.DNSLookupError("nosuch.example")) == "dns"
    assert classify(terror.ConnectionRefusedError()) == "refused"
    assert classify(terror.TimeoutError()) == "timeout"
    assert classify(terror.TCPTimedOutError()) == "timeout"
    assert (
        classify(
            ResponseNeverReceived(
                [Failure(SSL.Error([("SSL routines", "", "certificate verify failed")]))]
            )
        )
        == "tls"
    )
    assert classify(ResponseNeverReceived([Failure(terror.ConnectionLost())])) == "connection"
    assert classify(ValueError("x")) == "error"
    # Scrapy 2.19's own download exceptions
    assert classify(sx.CannotResolveHostError("nosuch.example")) == "dns"
    assert classify(sx.DownloadConnectionRefusedError()) == "refused"
    assert classify(sx.DownloadTimeoutError()) == "timeout"
    assert classify(sx.DownloadFailedError("SSL handshake failed")) == "tls"
    assert classify(sx.DownloadFailedError("reset")) == "connection"


def test_summary_names_the_cause_and_the_host() -> None:
    log = FailureLog()
    for _ in range(3):
        log.download_failed(
            "http://news.example/feed.xml", terror.DNSLookupError("news.example"), "feed"
        )
    assert log.summary() == "DNS lookup failed for news.example (3 attempts)"
    log = FailureLog()
    log.source_answered("http://127.0.0.1:1/feed.xml", 404, "feed")
    assert log.summary() == "feed http://127.0.0.1:1/feed.xml answered 404"
    log.source_answered("http://127.0.0.1:1/feed.xml", 200, "feed")  # a retry that worked
    assert log.summary() is None


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def broken_web() -> FakeWeb:
    web = FakeWeb()
    web.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    web.add("/feed.xml", "<html>Not found</html>", status=404)
    web.start()
    yield web  # type: ignore[misc]
    web.stop()


def test_status_says_what_went_wrong_from_the_first_failed_run(
    tmp_path: Path, broken_web: FakeWeb
) -> None:
    port = _closed_port()
    config = tmp_path / "outlets.toml"
    config.write_text(f"""
[defaults]
delay = 0

[[outlet]]
name = "refused"
feeds = ["http://127.0.0.1:{port}/feed.xml"]

[[outlet]]
name = "gone"
feeds = ["{broken_web.base}/feed.xml"]
""")
    db = tmp_path / "archive.duckdb"
    env = {"MEDIAWATCH_SCRAPY_SETTINGS": json.dumps({"RETRY_TIMES": 1})}
    r = run_cli("crawl", "--config", str(config), "--db", str(db), env=env)
    assert "Traceback" not in r.stderr, r.stderr
    status = run_cli("status", "--config", str(config), "--db", str(db), env={"COLUMNS": "80"})
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines if "last run failed" not in line), status.stdout
    assert any(line.startswith("refused") and "FAILING" in line for line in lines), status.stdout
    assert any(line.startswith("gone") and "FAILING" in line for line in lines), status.stdout
    assert (
        f"refused: last run failed: connection refused by 127.0.0.1:{port} (4 attempts)" in lines
    )  # robots + feed
    assert f"gone: last run failed: feed {broken_web.base}/feed.xml answered 404" in lines
    js = {
        r["outlet"]: r
        for r in json.loads(
            run_cli("status", "--format", "json", "--config", str(config), "--db", str(db)).stdout
        )
    }
    assert (
        js["refused"]["last_run_failed"] is True
        and "connection refused" in js["refused"]["last_run_failure"]
    )
    # The two views agree on what a failed run is.
    q = run_cli(
        "query",
        "SELECT a.outlet, a.failed_runs_24h, s.failed_runs_24h AS s_failed, a.runs_24h, "
        "s.runs_24h AS s_runs FROM outlet_activity a JOIN outlet_status s USING (outlet) ORDER BY 1",
        "--format",
        "json",
        "--db",
        str(db),
    )
    views = json.loads(q.stdout)
    assert [(v["outlet"], v["failed_runs_24h"], v["s_failed"]) for v in views] == [
        ("gone", 1, 1),
        ("refused", 1, 1),
    ]
    assert all(v["runs_24h"] == v["s_runs"] == 1 for v in views)
    q = run_cli(
        "query",
        "SELECT outlet, failure FROM crawl_runs WHERE run_failed(status, errors, articles_new, "
        "articles_updated) ORDER BY 1",
        "--format",
        "csv",
        "--db",
        str(db),
    )
    assert q.stdout.splitlines()[1].startswith("gone,feed ")
