"""Opening the archive: one writer at a time, many short-lived readers.

DuckDB allows one read-write process or many read-only ones, never both, so the writer
holds its connection only for a short transaction and readers retry on the lock error.

Checkpoints: every opener, read-only ones included, replays what DuckDB's log holds, so a
small archive is checkpointed at the end of every write session and readers replay nothing.
At a million articles a checkpoint costs 1-5 s of CPU (it rewrites the random-key indexes of
the tables written: for 1,000 new articles, 1.0 s of 1.4 s is articles_content_hash_idx and
0.4 s pages.record_id), which made ingest cost grow with the archive; so above
DEFER_CHECKPOINT_ARTICLES articles sessions leave their work in the log until it holds
CHECKPOINT_WAL (the session then ends with a checkpoint) or the spool runs empty
(archive.ingest). Opening replays the log: ~0.09 s + 0.03 s a MB at 1M articles, so 8 MB
(~19 sessions of 50 articles) balances replays against checkpoints. The log's real size
decides, not DuckDB's own trigger: that one adds the committing transaction's undo buffer to
the log's size, where each updated vector of a column counts for kilobytes, so an ingest
transaction "weighed" ~7 MB and its commit checkpointed at 1.3 MB of log, every third session
at 1M articles (bench/dedup_scale.py). DuckDB's trigger stays as a 256 MB backstop for a
session that never ends. The size decides, not a timing: a timed checkpoint of a small
archive on a loaded machine looked slow and switched a daemon to the log for nothing (reader
latency x4 in bench/daemon_soak.py). ``checkpoint()`` folds the log in explicitly: the daemon and
``mediawatch crawl`` call it when they finish, so an archive at rest is one file.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from archive.migrations import migrate

DEFAULT_ARCHIVE = (
    "data/archive.duckdb"  # the one default path of the archive (CLI, daemon, scrapy crawl)
)

logger = logging.getLogger(__name__)


def _fail_fast_on_missing_pandas() -> None:
    """duckdb's Python client tries ``import pandas`` for every bound parameter; when pandas
    is not installed each failed import walks sys.path (~0.2 ms a parameter, 5x the cost of
    a small statement). Marking the absent module as absent makes the failure instant. Does
    nothing when pandas is installed. Every archive connection is opened through here."""
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None  # type: ignore[assignment]


_fail_fast_on_missing_pandas()


class ArchiveError(Exception):
    """A problem with the archive file a user can act on (one line)."""


class ArchiveLocked(ArchiveError):
    """Another process held the archive through all our retries: try again later."""


CHECKPOINT_WAL = 8 << 20  # bytes of log at which a session ends with a checkpoint
DUCKDB_CHECKPOINT_BACKSTOP = "256MB"  # DuckDB's own trigger, for a session that never ends
DEFER_CHECKPOINT_ARTICLES = 200_000  # above this, sessions do not checkpoint as they close


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _create(path: Path) -> None:
    """Create a new archive atomically: a kill mid-creation leaves no table-less file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        migrate(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)


def refuse_lake(path: str | os.PathLike[str], what: str) -> None:
    """A lake URL given to a function of the file backend: one line, never a file named after
    the URL."""
    from archive.target import hide_password  # imports this module: imported when used

    text = os.fspath(path)  # a Path made of the URL has lost one of its slashes
    if re.match(r"(?i)postgres(ql)?:/", text):
        raise ArchiveError(f"{hide_password(text)}: {what} needs an archive file, not a lake URL")


def connect_write(path: str | os.PathLike[str], *, retries: int = 50) -> duckdb.DuckDBPyConnection:
    """Open the archive read-write, creating and migrating it; retry while a reader holds it."""
    refuse_lake(path, "writing")
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(
            f"{p.parent}: cannot create the archive directory: {exc.strerror}"
        ) from exc
    if not p.exists():
        try:
            _create(p)
        except OSError as exc:
            raise ArchiveError(f"{p}: cannot create the archive: {exc.strerror}") from exc
        except duckdb.Error as exc:
            raise ArchiveError(f"{p}: cannot create the archive: {exc}") from exc
    con = _retry(lambda: duckdb.connect(str(p)), p, retries)
    try:
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute(f"SET checkpoint_threshold = '{DUCKDB_CHECKPOINT_BACKSTOP}'")
        migrate(con)
    except duckdb.Error as exc:
        con.close()
        raise ArchiveError(f"{p}: cannot migrate the archive: {exc}") from exc
    return con


def connect_read(path: str | os.PathLike[str], *, retries: int = 60) -> duckdb.DuckDBPyConnection:
    """Open the archive read-only, retrying with backoff while the writer holds the lock."""
    refuse_lake(path, "this command")
    p = Path(path)
    if not p.exists():
        raise ArchiveError(f"{p}: no archive here (run `mediawatch crawl` first, or pass --db)")
    return _retry(lambda: duckdb.connect(str(p), read_only=True), p, retries)


FOREIGN_HOLDER_WAIT = 2.0  # seconds we wait for a lock held by something else than mediawatch
_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
_OURS = ("mediawatch", "crawler.crawlproc", "scrapy")  # our short write sessions, worth waiting for


def lock_holder(exc: BaseException) -> tuple[int | None, str]:
    """(pid, command line) of the process holding the archive, from DuckDB's lock error."""
    match = _HOLDER.search(str(exc))
    if match is None:
        return None, "unknown process"
    pid = int(match.group(2))
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(raw.decode(errors="replace").split()) or match.group(1)  # one line
    except OSError:
        command = match.group(1)
    return pid, command if len(command) <= 160 else command[:157] + "..."


def _is_ours(command: str) -> bool:
    return any(word in command for word in _OURS)


def _retry(
    opener: Callable[[], duckdb.DuckDBPyConnection], path: Path, retries: int
) -> duckdb.DuckDBPyConnection:
    """Retry while the lock is held by mediawatch (its write sessions are short); a lock held
    by another program (a read-write duckdb shell, a notebook) may last for hours, so that one
    is named, with how to read alongside, after FOREIGN_HOLDER_WAIT."""
    delay = 0.02
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return opener()
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise ArchiveError(f"{path}: cannot open the archive: {exc}") from exc
            pid, command = lock_holder(exc)
            foreign = not _is_ours(command)
            if attempt < retries and not (
                foreign and time.monotonic() - started >= FOREIGN_HOLDER_WAIT
            ):
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.5)
                continue
            holder = f"pid {pid}: {command}" if pid is not None else command
            if foreign:
                raise ArchiveLocked(
                    f"{path}: archive is locked by another program ({holder}); close it, or open the "
                    f"archive read-only there (duckdb -readonly {path}; duckdb.connect(path, read_only=True))"
                ) from exc
            raise ArchiveLocked(
                f"{path}: archive is locked by another process ({holder}); "
                f"gave up after {retries} retries"
            ) from exc
        except duckdb.Error as exc:
            raise ArchiveError(f"{path}: cannot open the archive: {exc}") from exc
    raise AssertionError("unreachable")


def held_for_writing(path: str | os.PathLike[str]) -> bool:
    """Does another process hold the archive read-write (so that even readers are locked out)?
    Readers only delay the writer, briefly; a read-write holder can keep it out for hours."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as exc:
        return _is_lock_error(exc)
    except duckdb.Error:
        return False
    return False


@contextmanager
def writer(path: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived write connection, closed on exit so readers can open the file."""
    con = connect_write(path)
    try:
        yield con
        # The band index's file, when this session took it past its threshold. Only loaded
        # where dedup ran: readers and the CLI's startup do not pay numpy's import for it.
        if (bands := sys.modules.get("archive.bandindex")) is not None:
            bands.save_if_due(con)
        logged = wal_bytes(path)
        if logged and (logged > CHECKPOINT_WAL or not checkpoint_is_deferred(con)):
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:  # the session's work is committed, in the log: nothing lost
                if "No space left on device" in str(exc):  # the next write fails too: say it once
                    raise ArchiveError(
                        f"{path}: No space left on device (the last session's work is kept "
                        "in the archive's log; free space and run again)"
                    ) from None
                logger.warning("checkpoint of %s failed, its log is kept: %s", path, exc)
    finally:
        con.close()


def checkpoint_is_deferred(con: duckdb.DuckDBPyConnection) -> bool:
    """Is the archive big enough that sessions leave their work in the log?"""
    row = con.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()
    return bool(row and int(row[0]) > DEFER_CHECKPOINT_ARTICLES)


def wal_bytes(path: str | os.PathLike[str]) -> int:
    """Size of the archive's write-ahead log (0 when everything is in the file)."""
    try:
        return os.path.getsize(f"{os.fspath(path)}.wal")
    except OSError:
        return 0


def checkpoint(path: str | os.PathLike[str]) -> None:
    """Fold the write-ahead log into the archive file (an archive at rest is then one file)."""
    with writer(path) as con:
        con.execute("CHECKPOINT")


@contextmanager
def reader(path: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_read(path)
    try:
        yield con
    finally:
        con.close()
