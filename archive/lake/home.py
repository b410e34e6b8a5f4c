"""This machine's own directory for a lake: the spool its crawls hand records through, the
daemon's logs, lock and config snapshot. The lake is shared; these never are (each daemon
ingests only its own crawls' spool). MEDIAWATCH_LAKE_HOME names it; by default it is
data/lake-DBNAME/ under the current directory. A daemon passes its home, absolute, to its
crawls through the same variable."""

from __future__ import annotations

import os
from pathlib import Path

from archive.target import LakeTarget, parse_target

HOME_ENV = "MEDIAWATCH_LAKE_HOME"


def lake_home(db: str | LakeTarget) -> Path:
    target = parse_target(db) if isinstance(db, str) else db
    assert isinstance(target, LakeTarget)
    given = os.environ.get(HOME_ENV)
    return (
        Path(given).expanduser().resolve()
        if given
        else Path("data", f"lake-{target.dbname}").resolve()
    )


def lake_spool(db: str | LakeTarget) -> Path:
    return lake_home(db) / "spool"
