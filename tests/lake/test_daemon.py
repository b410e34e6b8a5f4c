"""`mediawatch run --db <lake>`: the daemon crawls the fake outlet on 127.0.0.1 on its
schedule into a lake, records its runs and the outlet's state there, compacts the lake on
its own schedule, and stops cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

from archive.db import ArchiveError
from archive.target import LakeTarget
from tests.conftest import outlet_config, serving_outlet
from tests.lake.daemons import LakeDaemon
from tests.lake.test_migrate import lake_rows
from tests.test_daemon import ARTICLES, wait_for


def test_the_daemon_runs_on_a_lake(lake: tuple[str, LakeTarget], tmp_path: Path) -> None:
    url, target = lake
    with serving_outlet() as web:
        config = tmp_path / "outlets.toml"
        config.write_text(outlet_config(web.base))
        daemon = LakeDaemon(config, url, tmp_path / "home", "--compact-every", "3s").start()
        try:

            def two_runs() -> bool:
                try:
                    done = lake_rows(target, "SELECT count(*) FROM crawl_runs WHERE status = 'ok'")
                except ArchiveError:  # no lake until the daemon made it
                    return False
                return done[0][0] >= 2

            wait_for("two runs", two_runs, 120, daemon)
            compacted = "SELECT message FROM daemon_events WHERE kind = 'compacted'"
            wait_for("a compaction", lambda: lake_rows(target, compacted), 60, daemon)
            code, _ = daemon.stop(signal.SIGTERM)
        finally:
            daemon.kill()
    assert code == 0, daemon.log()[-3000:]
    assert lake_rows(target, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [
        (ARTICLES, ARTICLES)
    ]
    runs = lake_rows(
        target, "SELECT articles_new FROM crawl_runs WHERE status = 'ok' ORDER BY started_at"
    )
    assert runs[0] == (ARTICLES,) and all(r == (0,) for r in runs[1:])
    (message,) = lake_rows(target, compacted)[0]
    assert str(message).startswith("data files "), message
    state = lake_rows(target, "SELECT outlet, last_status FROM outlet_state")
    assert state and state[0][0] == "courrier"
    assert (tmp_path / "home" / "logs").is_dir() and (tmp_path / "home" / "daemon.lock").exists()
