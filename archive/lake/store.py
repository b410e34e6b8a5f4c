"""The lake as a Store (archive/store.py): one LakeWriter for the process, opened on first
use and opened again after a connection error, its spool and home on this machine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from archive.db import ArchiveError
from archive.ingest import IngestResult
from archive.lake import daemon_state
from archive.lake.connect import lost_lake
from archive.lake.home import lake_home
from archive.lake.ingest import LakeWriter, ingest_spool
from archive.target import LakeTarget, parse_target


class LakeStore:
    lake = True

    def __init__(self, url: str) -> None:
        target = parse_target(url)
        assert isinstance(target, LakeTarget)
        self.target = target
        self.name = target.display()
        self.home = lake_home(target)
        self.spool = self.home / "spool"
        self.runs: ModuleType = daemon_state
        self._writer: LakeWriter | None = None

    def writer(self) -> LakeWriter:
        if self._writer is None:
            self._writer = LakeWriter(self.target, home=str(self.home))
        return self._writer

    @contextlib.contextmanager
    def session(self) -> Iterator[LakeWriter]:
        """The writer; a lost connection closes it (the next session opens a new one) and is
        one ArchiveError line."""
        with lost_lake(self.name, self.close):
            yield self.writer()

    def ingest(self, time_budget: float = 2.0) -> IngestResult:
        try:
            return ingest_spool(self.writer(), self.spool, time_budget=time_budget)
        except ArchiveError:
            self.close()
            raise

    def checkpoint(self) -> None:
        """Nothing to fold: compaction of the lake is a later step of issue 15."""

    def held_for_writing(self) -> bool:
        return False  # a lake takes many writers

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
