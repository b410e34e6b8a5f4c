"""The durable hand-off between crawl processes and the archive's single writer.

A crawl process appends JSON records to segment files in the spool directory and never
opens the archive for writing, so a long crawl never holds DuckDB's lock. Each record is
flushed as it is written (a kill -9 loses at most the line being written); a segment is
renamed from ``.part`` to ``.jsonl`` when full, so the writer can ingest while the crawl
runs. A writer holds an flock on its ``.lock`` file for its whole life: when the lock is
free, the writer is dead and its ``.part`` segments are ingestable as they are.
Ingest is idempotent by ``record_id``, so a segment ingested twice (killed after the
commit, before the unlink) is harmless.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PART = ".part"
READY = ".jsonl"


def spool_dir_for(db_path: str | os.PathLike[str]) -> Path:
    """The spool lives beside the archive: data/archive.duckdb -> data/archive.spool/."""
    p = Path(db_path)
    return p.with_name(p.stem + ".spool")


class SpoolWriter:
    """Appends records for one crawl (run and outlet) to rotating segment files."""

    def __init__(self, spool_dir: Path, prefix: str, *, max_records: int = 50, max_age: float = 2.0):
        self.dir = Path(spool_dir)
        self.prefix = prefix
        self.max_records = max_records
        self.max_age = max_age
        self._seq = 0
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._count = 0
        self._opened_at = 0.0
        self._lock_fd: int | None = None

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / f"{self.prefix}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._start_segment()
        assert self._file is not None
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()
        self._count += 1
        if self._count >= self.max_records or time.monotonic() - self._opened_at >= self.max_age:
            self._finish_segment()

    def rotate_if_old(self) -> None:
        """Called periodically so a slow crawl's records do not wait in a .part file."""
        if self._file is not None and time.monotonic() - self._opened_at >= self.max_age:
            self._finish_segment()

    def close(self) -> None:
        self._finish_segment()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            (self.dir / f"{self.prefix}.lock").unlink(missing_ok=True)

    def _start_segment(self) -> None:
        self._seq += 1
        self._path = self.dir / f"{self.prefix}-{self._seq:06d}{PART}"
        self._file = open(self._path, "w", encoding="utf-8")  # noqa: SIM115 - closed in _finish_segment
        self._count = 0
        self._opened_at = time.monotonic()

    def _finish_segment(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._path, self._path.with_name(self._path.name[: -len(PART)] + READY))
        self._file = None
        self._path = None


def _writer_alive(lock_path: Path) -> bool:
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def ready_segments(spool_dir: Path) -> list[Path]:
    """Segments that can be ingested now, oldest first: closed ones, and the open
    segments of writers that died (their lock is free)."""
    if not spool_dir.is_dir():
        return []
    ready: list[Path] = []
    alive: dict[str, bool] = {}
    for path in sorted(spool_dir.iterdir()):
        if path.name.endswith(READY):
            ready.append(path)
        elif path.name.endswith(PART):
            prefix = path.name.rsplit("-", 1)[0]
            if prefix not in alive:
                alive[prefix] = _writer_alive(spool_dir / f"{prefix}.lock")
            if not alive[prefix]:
                ready.append(path)
    return sorted(ready, key=lambda p: p.name)


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a segment; a last line cut by a kill is skipped (it was never handed off)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def discard_segment(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.name.endswith(PART):
        prefix = path.name.rsplit("-", 1)[0]
        lock = path.with_name(f"{prefix}.lock")
        if not any(p.name.startswith(prefix + "-") for p in path.parent.iterdir() if p != path):
            lock.unlink(missing_ok=True)


def pending_urls(spool_dir: Path) -> set[str]:
    """URLs fetched but not yet ingested: the seen-set must include them too."""
    urls: set[str] = set()
    if not spool_dir.is_dir():
        return urls
    for path in spool_dir.iterdir():
        if path.name.endswith((READY, PART)):
            for record in read_segment(path):
                if record.get("type") == "page" and record.get("article"):
                    urls.update(u for u in (record.get("url"), record.get("key")) if u)
    return urls
