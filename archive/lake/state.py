"""What a crawl of an outlet needs to know from a lake before it starts (archive/state.py on
the file): the same queries on the lake's tables; validators and the outlet's learned
boilerplate from PostgreSQL."""

from __future__ import annotations

from archive.lake import boilerplate as lake_boilerplate
from archive.lake.connect import connect_lake_read
from archive.lake.schema import schema_version
from archive.state import CrawlState, archived_state
from archive.target import LakeTarget, parse_target, pg_session


def read_lake_state(db: str, outlet: str) -> CrawlState:
    """A lake nobody created yet knows nothing, as a missing archive file (its first ingest
    creates it), so `scrapy crawl` on a new lake starts like `mediawatch crawl`."""
    target = parse_target(db)
    assert isinstance(target, LakeTarget)
    if schema_version(target) == 0:
        return CrawlState()
    con = connect_lake_read(target)
    try:
        state = archived_state(con, outlet)
    finally:
        con.close()
    with pg_session(target, read_only=True) as pg:
        for url, etag, last_modified in pg.execute(
            "SELECT url, etag, last_modified FROM mediawatch.http_state WHERE outlet = %s",
            [outlet],
        ):
            state.validators[str(url)] = (etag, last_modified)
        state.boilerplate = lake_boilerplate.load(pg, outlet)
    return state
