"""Learned boilerplate on a lake: the counts of an outlet's repeated paragraphs are kept in
PostgreSQL as the lake's batches settle, the next crawl of the outlet (on any machine) loads
them and strips the paragraph no rule knows, and the articles archived before it was learned
are queued for their re-clean."""

from __future__ import annotations

from pathlib import Path

import psycopg

from archive.target import LakeTarget
from pipelines.promo import paragraph_hash
from tests import pg
from tests.conftest import rows, run_cli
from tests.fakeweb import FakeWeb
from tests.test_boilerplate import PITCH, TOPICS, _feed, _story


def test_a_pitch_repeated_by_an_outlet_is_learned_on_the_lake(
    lake: tuple[str, LakeTarget], pg_server: pg.Server, tmp_path: Path
) -> None:
    url, target = lake
    web = FakeWeb()
    for k in range(6):
        web.add(f"/2024/05/1{k}/{TOPICS[k]}", _story(k))
    web.start()
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "ledger"\nfeeds = ["{web.base}/feed.xml"]\nlanguage = "en"\n'
            "delay = 0\nconcurrency = 4\n"
        )
        for n in (4, 6):  # four articles teach the pitch; the next two are crawled knowing it
            web.add("/feed.xml", _feed(web.base, n), content_type="application/rss+xml")
            done = run_cli("crawl", "--config", str(config), "--db", url, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
    finally:
        web.stop()
    with psycopg.connect(pg_server.conninfo(target.dbname)) as con:
        (count,) = con.execute(
            "SELECT articles FROM mediawatch.paragraph_stats WHERE para_hash = %s",
            [paragraph_hash(PITCH)],
        ).fetchone() or (None,)
        due = con.execute("SELECT outlet, sample FROM mediawatch.boilerplate_due").fetchall()
    # once per new article, in the batch that archived it; the stripped ones too (counted
    # before stripping, as on the file, so a learned pitch stays learned)
    assert count == 6
    assert due == [("ledger", PITCH)], "the first articles, which still hold it, are queued"
    texts = rows(url, "SELECT title, text FROM articles ORDER BY id")
    assert [PITCH in t for _, t in texts] == [True] * 4 + [False] * 2
    removed = rows(url, "SELECT rule FROM removed_blocks WHERE text = ?", [PITCH])
    assert removed == [("boilerplate.outlet",)] * 2
