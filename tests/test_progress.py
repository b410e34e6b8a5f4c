"""`mediawatch crawl` shows progress: a line rewritten in place on a terminal (pages fetched
and queued, articles, ETA), a summary line when piped (issue 18 item 9)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from crawler.progress import Progress, eta, format_progress
from tests.conftest import MEDIAWATCH, REPO, config_file, run_cli
from tests.fakeweb import FakeWeb


def test_progress_line_and_eta() -> None:
    p = Progress(fetched=30, queued=15, articles=20, outlets=2, done=1)
    assert eta(p, 60.0) == 30.0  # 15 left at 0.5 pages/s
    assert (
        format_progress(p, 60.0)
        == "30 pages fetched, 15 queued, 20 articles, 1/2 outlets done, 1m00s, ETA 30s"
    )
    assert format_progress(Progress(), 0.4).endswith("ETA ?")


def test_piped_crawl_sums_up_in_one_line(fake_outlet: FakeWeb, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake_outlet.base)
    r = run_cli("crawl", "--config", str(config), "--db", str(tmp_path / "a.duckdb"))
    lines = r.stderr.splitlines()
    summary = [line for line in lines if "pages fetched" in line]
    assert summary, r.stderr
    m = re.match(
        r"(\d+) pages fetched, 0 queued, (\d+) articles, 1/1 outlets done, \d+", summary[-1]
    )
    assert m and int(m.group(1)) >= 10 and int(m.group(2)) >= 5, summary[-1]
    assert "\r" not in r.stderr


def test_terminal_crawl_rewrites_one_progress_line(fake_outlet: FakeWeb, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake_outlet.base)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(MEDIAWATCH), "crawl", "--config", str(config), "--db", str(tmp_path / "a.duckdb")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        cwd=REPO,
        env={**os.environ, "MEDIAWATCH_LOG_LEVEL": "WARNING"},
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=180) == 0
    os.close(leader)
    text = out.decode("utf-8", "replace")
    updates = [part for part in text.split("\r") if "pages fetched" in part and "ETA" in part]
    assert len(updates) >= 2, text
    assert "queued" in updates[0] and "articles" in updates[0]
