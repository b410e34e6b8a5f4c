"""Three `mediawatch run` daemons on one lake share six fake outlets on 127.0.0.1 by lease.
One is killed -9 mid-run, one frozen (SIGSTOP) mid-run and resumed: every article is archived
exactly once, no two runs of one outlet fetch at the same time, the dead one's outlets are
taken over within one lease, and the frozen one's late run is refused (its fence is stale)."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg

from archive.db import ArchiveError
from archive.target import LakeTarget
from tests import pg
from tests.conftest import RSS, build_outlet, run_cli
from tests.fakeweb import FakeWeb
from tests.lake.daemons import LakeDaemon
from tests.lake.test_migrate import lake_rows
from tests.test_daemon import ARTICLES, wait_for

OUTLETS = [f"outlet{n}" for n in range(6)]
LEASE = 6.0  # seconds (the default is 30 s: shorter here so the test takes one minute)


@contextlib.contextmanager
def outlets() -> Iterator[dict[str, FakeWeb]]:
    webs = {}
    try:
        for name in OUTLETS:
            web = FakeWeb()
            build_outlet(web)
            webs[name] = web.start()
        yield webs
    finally:
        for web in webs.values():
            web.stop()


def config_for(webs: dict[str, FakeWeb]) -> str:
    text = "[defaults]\ndelay = 0\nconcurrency = 8\n"
    for name, web in webs.items():
        text += (
            f'\n[[outlet]]\nname = "{name}"\nfeeds = ["{web.base}/feed.xml"]\n'
            f'sitemaps = ["{web.base}/sitemap_index.xml"]\nstart_urls = ["{web.base}/politique/"]\n'
            f'article_pattern = "/20\\\\d\\\\d/"\nlanguage = "fr"\nevery = "2s"\n'
        )
    return text


def publish(webs: dict[str, FakeWeb], round_: int) -> None:
    """A new article in every outlet, listed first in its feed."""
    for web in webs.values():
        path = f"/2024/06/0{round_}/new-story-{round_}"
        web.add(path, web.fixture("moved.html").replace("cycling lanes", f"tram lines ({round_})"))
        item = f"<item><title>New {round_}</title><link>{web.base}{path}</link></item>"
        extra = "".join(
            f"<item><title>New {r}</title><link>{web.base}/2024/06/0{r}/new-story-{r}</link></item>"
            for r in range(1, round_)
        )
        feed = RSS.format(base=web.base).replace("</channel>", item + extra + "</channel>")
        web.add("/feed.xml", feed, content_type="application/rss+xml", etag=True)


def leases(con: psycopg.Connection) -> dict[str, tuple[str | None, int, datetime | None]]:
    rows = con.execute("SELECT outlet, holder, fence, expires_at FROM mediawatch.leases")
    return {str(o): (h, int(f), e) for o, h, f, e in rows}


def holder_of(con: psycopg.Connection, daemon: LakeDaemon) -> str | None:
    row = con.execute(
        "SELECT holder FROM mediawatch.daemons WHERE home = %s ORDER BY seen_at DESC LIMIT 1",
        [str(daemon.home)],
    ).fetchone()
    return str(row[0]) if row else None


def crawling(daemon: LakeDaemon) -> bool:
    return bool(daemon.children())


def test_three_daemons_share_a_lake_through_a_kill_and_a_freeze(
    pg_server: pg.Server, pg_database: str, lake: tuple[str, LakeTarget], tmp_path: Path
) -> None:
    url, target = lake
    con = psycopg.connect(pg_server.conninfo(pg_database), autocommit=True)

    def archived() -> int:
        try:
            return int(lake_rows(target, "SELECT count(*) FROM articles")[0][0])
        except ArchiveError:
            return 0

    with outlets() as webs:
        config = tmp_path / "outlets.toml"
        config.write_text(config_for(webs))
        daemons = [
            LakeDaemon(config, url, tmp_path / f"home{n}", "--lease", f"{LEASE:g}s", "--max-parallel", "2")
            for n in range(3)
        ]  # fmt: skip
        try:
            for d in daemons:
                d.start()
            wait_for("every first article", lambda: archived() >= 6 * ARTICLES, 240, daemons[0])
            # shared out: every daemon holds two outlets
            wait_for(
                "the outlets shared out",
                lambda: (
                    sorted(
                        sum(1 for h, _, _ in leases(con).values() if h == holder_of(con, d))
                        for d in daemons
                    )
                    == [2, 2, 2]
                ),
                60,
            )
            publish(webs, 1)

            # kill -9 of a daemon while it crawls
            killed = daemons[0]
            wait_for("a crawl of the first daemon", lambda: crawling(killed), 60, killed)
            gone = holder_of(con, killed)
            before = {o: v for o, v in leases(con).items() if v[0] == gone}
            os.kill(killed.pid, signal.SIGKILL)
            killed_at = time.time()
            wait_for(
                "its outlets taken over",
                lambda: all(leases(con)[o][0] not in (None, gone) for o in before),
                4 * LEASE,
            )
            took = time.time() - killed_at
            expiry = max(e for _, _, e in before.values() if e is not None).timestamp()
            print(f"take-over {took:.1f}s after the kill, {time.time() - expiry:.1f}s after expiry")
            assert took <= LEASE + LEASE / 3 + 2.0, f"take-over after {took:.1f}s"
            assert time.time() - expiry <= LEASE / 3 + 2.0, "taken over within a tick of expiry"
            wait_for("round 1 archived", lambda: archived() >= 6 * (ARTICLES + 1), 120, daemons[1])

            # a daemon frozen mid-run, resumed after its lease ran out
            frozen, other = daemons[1], daemons[2]
            wait_for("a crawl of the second daemon", lambda: crawling(frozen), 60, frozen)
            os.kill(frozen.pid, signal.SIGSTOP)
            publish(webs, 2)
            try:
                wait_for(
                    "the frozen daemon's outlets taken over",
                    lambda: all(h == holder_of(con, other) for h, _, _ in leases(con).values()),
                    4 * LEASE,
                )
                time.sleep(LEASE)  # the other daemon crawls them meanwhile
            finally:
                os.kill(frozen.pid, signal.SIGCONT)
            # (a batch the frozen writer had claimed but not committed made the other wait)
            wait_for("round 2 archived", lambda: archived() >= 6 * (ARTICLES + 2), 120, other)
            wait_for(
                "the frozen daemon's late run refused",
                lambda: con.execute(
                    "SELECT count(*) FROM mediawatch.crawl_runs WHERE status = 'fenced' AND home = %s",
                    [str(frozen.home)],
                ).fetchone()[0],  # type: ignore[index]
                60,
                frozen,
            )
            status = run_cli("status", "--db", url, timeout=60)
            assert status.returncode == 0, status.stderr
            assert f"crawled by {holder_of(con, other)}" in status.stdout, status.stdout
            for d in daemons[1:]:
                assert d.stop(signal.SIGTERM)[0] == 0, d.log()[-3000:]
            # the killed daemon started again: its spool replays, its old run is refused
            restarted = LakeDaemon(config, url, killed.home, "--lease", f"{LEASE:g}s").start()
            daemons.append(restarted)
            time.sleep(2 * LEASE)
            assert restarted.stop(signal.SIGTERM)[0] == 0, restarted.log()[-3000:]
        finally:
            for d in daemons:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(d.pid, signal.SIGCONT)
                d.kill()
    expected = 6 * (ARTICLES + 2)
    assert lake_rows(target, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [
        (expected, expected)
    ], "every article archived exactly once"
    per_outlet = lake_rows(target, "SELECT outlet, count(*) FROM articles GROUP BY 1 ORDER BY 1")
    assert per_outlet == [(o, ARTICLES + 2) for o in OUTLETS]
    # no two runs of one outlet fetched at the same time (the pages the lake accepted)
    spans = lake_rows(
        target,
        "SELECT outlet, run_id, min(fetched_at), max(fetched_at) FROM pages "
        "GROUP BY 1, 2 ORDER BY 1, 3",
    )
    for (o1, r1, _, end), (o2, r2, start, _) in itertools.pairwise(spans):
        assert o1 != o2 or end < start, f"{o1}: runs {r1} and {r2} overlap"
    fenced = lake_rows(target, "SELECT count(*) FROM crawl_runs WHERE status = 'fenced'")
    assert fenced[0][0] >= 1
    con.close()
