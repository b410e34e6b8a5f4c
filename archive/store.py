"""Where the daemon and `mediawatch crawl` write: the embedded file or a lake, behind the few
operations they need (a write session, an ingest bite, the run and outlet-state functions,
the local spool and home). The file's are archive.db / archive.ingest / archive.runs as
they are; the lake's are archive/lake/store.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from archive.ingest import IngestResult


class Store(Protocol):
    """An archive to write to."""

    lake: bool
    name: str  # what messages call it
    home: Path  # this machine's directory for it: logs, lock, config snapshot
    spool: Path
    runs: ModuleType  # archive.runs, or archive.lake.daemon_state (same functions)

    def session(self) -> contextlib.AbstractContextManager[Any]: ...
    def ingest(self, time_budget: float = 2.0) -> IngestResult: ...
    def checkpoint(self) -> None: ...
    def held_for_writing(self) -> bool: ...
    def close(self) -> None: ...


class FileStore:
    lake = False

    def __init__(self, db: Path) -> None:
        from archive import runs
        from archive.spool import spool_dir_for

        self.db = db
        self.name = str(db)
        self.home = db.parent
        self.spool = spool_dir_for(db)
        self.runs: ModuleType = runs

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        from archive.db import writer

        with writer(self.db) as con:
            yield con

    def ingest(self, time_budget: float = 2.0) -> IngestResult:
        from archive.ingest import ingest_spool

        return ingest_spool(self.db, time_budget=time_budget)

    def checkpoint(self) -> None:
        from archive.db import checkpoint

        checkpoint(self.db)

    def held_for_writing(self) -> bool:
        from archive.db import held_for_writing

        return held_for_writing(self.db)

    def close(self) -> None:
        pass


def open_store(db: str | Path) -> Store:
    """The store `--db` names: a lake URL, or the file (its resolved path)."""
    from archive.target import is_lake

    if is_lake(db):
        from archive.lake.store import LakeStore

        return LakeStore(str(db))
    return FileStore(Path(db).resolve())
