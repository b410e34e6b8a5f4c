"""The durable hand-off between crawl processes and the archive's single writer.

A crawl process appends JSON records to segment files in the spool directory and never
opens the archive for writing, so a long crawl never holds DuckDB's lock. Each record is
flushed as it is written (a kill -9 loses at most the line being written); a segment is
renamed from ``.part`` to ``.jsonl`` by the write that fills it or finds it older than
``max_age``, and at close, so the writer can ingest while the crawl runs. A writer holds an flock on its ``.lock`` file for its whole life: when the lock is
free, the writer is dead and its ``.part`` segments are ingestable as they are.
Ingest is idempotent by ``record_id``, so a segment ingested twice (killed after the
commit, before the unlink) is harmless.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from archive.records import RECORD_VERSION, SpoolRecord, json_kind

logger = logging.getLogger(__name__)

PART = ".part"
READY = ".jsonl"
# A line longer than this is no record a crawl writes (pages over 10 MB are refused before
# they are cleaned): it is quarantined unparsed rather than loaded.
MAX_LINE_BYTES = 64 << 20

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def scrub_surrogates(value: Any) -> tuple[Any, int]:
    """(value with every lone UTF-16 surrogate replaced by U+FFFD, how many were replaced).

    A lone surrogate ("\\ud83d" from a broken feed or JSON-LD) is valid in a Python str and in
    JSON, but not in UTF-8: the spool file and DuckDB both refuse it, which lost the page."""
    if isinstance(value, str):
        n = len(_SURROGATE.findall(value))
        if not n:
            return value, 0
        # a pair of surrogates is one character: keep it; only the lone ones become U+FFFD
        fixed = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed, n - 2 * (len(value) - len(fixed))
    if isinstance(value, dict):
        total = 0
        out: dict[Any, Any] = {}
        for k, v in value.items():
            k2, a = scrub_surrogates(k)
            v2, b = scrub_surrogates(v)
            out[k2] = v2
            total += a + b
        return out, total
    if isinstance(value, list | tuple):
        items = [scrub_surrogates(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0


def note_repair(record: dict[str, Any], replaced: int) -> None:
    """Say in the page's detail (pages.detail) that characters were replaced, so it is queryable."""
    if record.get("type") == "page" and replaced:
        note = f"{replaced} invalid characters (lone surrogates) replaced with U+FFFD"
        detail = record.get("detail")
        record["detail"] = f"{detail}; {note}" if isinstance(detail, str) and detail else note


def spool_dir_for(db_path: str | os.PathLike[str]) -> Path:
    """The spool lives beside the archive: data/archive.duckdb -> data/archive.spool/ (beside the
    file itself: a symlink to the archive must not get a spool of its own). A lake's spool is
    in this machine's home for it (archive/lake/home.py)."""
    if isinstance(db_path, str) and db_path.lower().startswith(("postgresql://", "postgres://")):
        from archive.lake.home import lake_spool

        return lake_spool(db_path)
    p = Path(db_path).resolve()
    return p.with_name(p.stem + ".spool")


class SpoolWriter:
    """Appends records for one crawl (run and outlet) to rotating segment files."""

    def __init__(
        self, spool_dir: Path, prefix: str, *, max_records: int = 50, max_age: float = 2.0
    ):
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
        self.repaired = 0  # records whose text had lone surrogates replaced

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / f"{self.prefix}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def write(self, record: SpoolRecord) -> None:
        if self._file is None:
            self._start_segment()
        assert self._file is not None
        record = {"v": RECORD_VERSION, **record}  # type: ignore[assignment]  # stamped, the caller's left as it is
        line = json.dumps(record, ensure_ascii=False, default=str)
        if _SURROGATE.search(line):  # rare: repaired here rather than losing the page
            scrubbed, replaced = scrub_surrogates(record)
            note_repair(scrubbed, replaced)
            record = scrubbed
            self.repaired += 1
            logger.warning(
                "record %s: %d lone surrogates replaced with U+FFFD", record.get("url"), replaced
            )
            line = json.dumps(record, ensure_ascii=False, default=str)
            line = _SURROGATE.sub("\ufffd", line)  # one left in a default=str value
        self._file.write(line + "\n")
        self._file.flush()
        self._count += 1
        if self._count >= self.max_records or time.monotonic() - self._opened_at >= self.max_age:
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


def live_writers(spool_dir: Path) -> set[str]:
    """Prefixes ("run_id.outlet") of the writers still alive: their crawl holds its lock."""
    if not spool_dir.is_dir():
        return set()
    return {lock.name[: -len(".lock")] for lock in spool_dir.glob("*.lock") if _writer_alive(lock)}


def unfinished_runs(spool_dir: Path) -> set[str]:
    """Prefixes ("run_id.outlet") of the runs not all in the archive yet: their writer is alive,
    or some of their segments wait. A run recorded 'running' and not in here has crashed."""
    waiting = {
        p.name.rsplit("-", 1)[0]
        for p in (spool_dir.iterdir() if spool_dir.is_dir() else [])
        if p.name.endswith((PART, READY))
    }
    return live_writers(spool_dir) | waiting


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


@dataclass
class Line:
    """One line of a segment: a record, or the reason it is not one (to be quarantined)."""

    number: int
    record: dict[str, Any] | None
    problem: str | None
    raw: str


def read_lines(path: Path) -> Iterator[Line]:
    """Every line of a segment, good or bad. Only the last line of a ``.part`` segment can be
    cut short (a kill -9 mid-write: it was never handed off), so it alone is left out, logged;
    any other line that is not a JSON object comes back with its problem, never dropped."""
    with open(path, "rb") as fh:
        number = 0
        while True:
            chunk = fh.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                size = len(chunk)
                while chunk and not chunk.endswith(b"\n"):  # skip the rest of the giant line
                    chunk = fh.readline(MAX_LINE_BYTES)
                    size += len(chunk)
                yield Line(
                    number,
                    None,
                    f"record of {size / (1 << 20):.0f} MB is over the "
                    f"{MAX_LINE_BYTES >> 20} MB limit",
                    "",
                )
                continue
            if not chunk.endswith(b"\n") and path.name.endswith(PART):
                logger.warning(
                    "%s: last line cut by a crash (%d bytes) left out", path.name, len(chunk)
                )
                return
            text = chunk.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            yield _parse(number, text.strip())


def _parse(number: int, text: str) -> Line:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return Line(number, None, f"not JSON: {exc}", text)
    if not isinstance(value, dict):
        return Line(number, None, f"not a JSON object but {json_kind(value)}", text)
    if _ESCAPED_SURROGATE.search(text):
        value, replaced = scrub_surrogates(value)
        if replaced:
            note_repair(value, replaced)
    return Line(number, value, None, text[:500])  # the record itself is kept parsed: no second copy


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a segment (lines that are no record are left to ``read_lines`` users)."""
    for line in read_lines(path):
        if line.record is not None:
            yield line.record


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
