"""The LSH band index of archive.dedup: band hash key -> article ids, kept out of DuckDB.

Why not a DuckDB ART index (measured, bench/dedup_scale.py): band hashes are random keys, so
the 42 keys of every new article land in 42 index blocks that each checkpoint rewrites; at
100k articles a 50-article transaction took 2-4 s to insert and 6-14 s to checkpoint.
``lsh_bands`` stays the durable store and the truth; this module keeps sorted uint32 arrays.

Layers, searched together: ``base``, the persisted file (archive.bandstore, memory-mapped)
or, without one, an in-memory sorted run; ``run``, sorted rows above the file's watermark
(read from lsh_bands on open, or merged in from the delta); ``delta``, a dict of the rows this
process added lately. On the first use of a connection the index is synced: a new process
maps the file after checking its header against lsh_bands (archive identity, the watermark
article's band hashes) and reads only rows with ``article_id`` above its watermark, pruned
by zone maps; a missing, cut, damaged, stale or foreign file is rebuilt from the table with
the reason logged. When the rows above the file pass ``PERSIST_MIN_ROWS`` (or ``1/PERSIST_SHARE``
of the file), the write session writes a new file as it ends (save_if_due, from
archive.db.writer), or the next sync does if that session was killed: either way every
transaction has committed or rolled back, and the watermark written is lsh_bands' own maximum.

Known limits: rows of a rolled-back transaction stay in the index (and may be persisted);
they only yield candidates the exact check finds no article for. Bands that refresh_bands
adds to an older article in another process (below the watermark) are not read by this one
until the file is rebuilt, as before the file existed: a copy matching only the edited text
may be missed, nothing is wrongly merged.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np

from archive import bandstore

logger = logging.getLogger(__name__)

HOT_BAND = 5000  # a band hash shared by more articles is template or boilerplate: skipped
PERSIST_MIN_ROWS = 500_000  # rows above the file before a sync writes a new one (~12k articles)
PERSIST_SHARE = 32  # ... or this fraction of the file: a new process reads at most ~1/32 of 1M
STATS: Counter[str] = Counter()  # full_loads, file_loads, file_writes, rebuilds, rows_read

_EMPTY = np.zeros(0, dtype=np.uint32)


KEY_MASK = 0xFFFFFFFF  # a band hash's low 32 bits are its key (SQL: hash & KEY_MASK)


def band_key(band_hash: int) -> int:
    """The index key of a band hash: its low 32 bits. Halves the index (8 bytes a row
    instead of 16: 336 MB at 1M articles, not 670); the rare extra candidate a shortened key
    brings (~0.01 per article at 1M) is rejected by the exact check like any other."""
    return int(band_hash) & KEY_MASK


def _merge(
    k1: np.ndarray, i1: np.ndarray, k2: np.ndarray, i2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs into one, in linear time and no more memory than the result: the
    second run's rows go after the first's equal keys (a full sort of 42M rows took seconds
    and three times the memory)."""
    if not len(k2):
        return k1, i1
    if not len(k1):
        return k2, i2
    pos = np.searchsorted(k1, k2, side="right")
    return np.insert(k1, pos, k2), np.insert(i1, pos, i2)


def _sorted(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], ids[order]


class BandIndex:
    """The band index of one database file (``path``: its band file, None in memory)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.last_save_seconds = 0.0  # what the last file write took (bench/dedup_scale.py)
        self._reset()

    def _reset(self) -> None:
        self.keys, self.ids = _EMPTY, _EMPTY  # base: the mapped file, or a sorted run in memory
        self.run_keys, self.run_ids = _EMPTY, _EMPTY
        self.delta: dict[int, list[int]] = {}
        self.delta_rows = 0
        self.watermark = -1  # highest article_id whose rows the index holds
        self.file_watermark = -1  # the watermark of the file that base maps (-1: no file)
        self.con: duckdb.DuckDBPyConnection | None = None  # the connection last synced with

    @property
    def nbytes(self) -> int:
        """Bytes held in process memory (a mapped file's pages are the page cache's)."""
        base = 0 if isinstance(self.keys, np.memmap) else self.keys.nbytes + self.ids.nbytes
        return int(base + self.run_keys.nbytes + self.run_ids.nbytes)

    @property
    def rows(self) -> int:
        return len(self.keys) + len(self.run_keys) + self.delta_rows

    @property
    def unsaved_rows(self) -> int:
        """Rows not in the band file (all of them when there is none)."""
        return self.rows - (len(self.keys) if self.file_watermark >= 0 else 0)

    # -- adding rows ---------------------------------------------------------------------

    def _add(self, keys: Sequence[int], ids: Sequence[int]) -> None:
        for k, a in zip(keys, ids, strict=True):
            self.delta.setdefault(int(k), []).append(int(a))
        self.delta_rows += len(keys)
        if self.delta_rows > max(50_000, len(self.run_keys) // 8):
            self._merge_delta()

    def _merge_delta(self) -> None:
        if not self.delta:
            return
        dk = np.fromiter(
            (k for k, v in self.delta.items() for _ in v), dtype=np.uint32, count=self.delta_rows
        )
        di = np.fromiter(
            (a for v in self.delta.values() for a in v), dtype=np.uint32, count=self.delta_rows
        )
        self._add_run(*_sorted(dk, di))
        self.delta, self.delta_rows = {}, 0

    def _add_run(self, keys: np.ndarray, ids: np.ndarray) -> None:
        self.run_keys, self.run_ids = _merge(self.run_keys, self.run_ids, keys, ids)

    def added(self, article_id: int, bands: Sequence[int]) -> None:
        """Rows this process just inserted (inside the caller's transaction)."""
        if article_id > 0xFFFFFFFF:
            raise ValueError(f"article id {article_id} does not fit the band index (uint32)")
        self._add([band_key(b) for b in bands], [article_id] * len(bands))
        self.watermark = max(self.watermark, article_id)

    # -- syncing with the table and the file ---------------------------------------------

    def _load_since(self, con: duckdb.DuckDBPyConnection, after: int) -> None:
        con.execute("SET enable_progress_bar = false")  # a load can take seconds
        # Sorted here rather than by ORDER BY: numpy sorts 42M uint32 in a few seconds, DuckDB's
        # sort of the same rows took 29 s at 1M articles.
        res = con.execute(
            f"SELECT (hash & {KEY_MASK})::UINTEGER AS k, article_id::UINTEGER AS a FROM lsh_bands "
            "WHERE article_id > ?",
            [after],
        ).fetchnumpy()
        keys, ids = np.asarray(res["k"], np.uint32), np.asarray(res["a"], np.uint32)
        STATS["rows_read"] += len(keys)
        if not len(keys):
            return
        self.watermark = max(self.watermark, int(ids.max()))
        if after < 0 and not self.rows:
            self.keys, self.ids = _sorted(keys, ids)
        elif len(keys) > 10_000:
            self._add_run(*_sorted(keys, ids))
        else:
            self._add(keys.tolist(), ids.tolist())

    def sync(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bring the index up to date with this connection's archive (once per connection:
        within one nothing else writes, and this process reports its rows through added())."""
        if self.con is con:
            return
        if self.watermark >= 0:
            # Band rows are never deleted, so the newest one we hold must still be there; if
            # not, the archive was replaced or restored (or that transaction rolled back).
            # Filtered on article_id, which zone maps prune: an unfiltered count(*) scans the
            # table while the log holds appended rows (0.2-0.3 s a session at 1M articles).
            row = con.execute(
                "SELECT count(*) FROM lsh_bands WHERE article_id >= ?", [self.watermark]
            ).fetchone()
            if row is None or not int(row[0]):
                self._reset()
        if self.watermark < 0 and not self.rows:
            self._open(con)
        else:
            self._load_since(con, self.watermark)
        self.con = con
        if self.save_due:  # the last session ended before writing it (killed): do it now
            self.save(con)

    @property
    def save_due(self) -> bool:
        """Enough rows above the file to write a new one (the first open of an archive too)."""
        return self.path is not None and self.unsaved_rows > max(
            PERSIST_MIN_ROWS, len(self.keys) // PERSIST_SHARE
        )

    def _open(self, con: duckdb.DuckDBPyConnection) -> None:
        identity = archive_identity(con) if self.path is not None else None
        if self.path is not None and identity is not None:
            if gone := bandstore.remove_stale_parts(self.path):
                logger.warning(
                    "band index %s: removed %d part(s) of a killed writer", self.path, gone
                )
            try:
                stored = bandstore.read(self.path)
                _check(con, stored.header, identity)
            except bandstore.BandFileError as exc:
                STATS["rebuilds"] += 1
                # The first writer of an archive finds none: not worth a line on a CLI's stderr.
                log = logger.debug if str(exc) == "no band file" else logger.warning
                log("band index %s rebuilt from lsh_bands: %s", self.path, exc)
            else:
                self.keys, self.ids = stored.keys, stored.ids
                self.watermark = self.file_watermark = int(stored.header["watermark"])
                STATS["file_loads"] += 1
                self._load_since(con, self.watermark)
                return
        STATS["full_loads"] += 1
        self._load_since(con, -1)
        if self.path is not None and identity is not None and self.watermark >= 0:
            self.save(con)

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write every row held to the band file and map it. Call between transactions, or
        before this transaction wrote band rows: the watermark stored is the table's own."""
        if self.path is None:
            return
        started = time.perf_counter()
        identity = archive_identity(con)
        row = con.execute(
            "SELECT max(article_id) FROM lsh_bands WHERE article_id > ?", [self.file_watermark]
        ).fetchone()
        if identity is None or row is None or row[0] is None:
            return
        top = int(row[0])
        tail = _tail(con, top)
        self._merge_delta()
        keys, ids = _merge(self.keys, self.ids, self.run_keys, self.run_ids)
        try:
            bandstore.remove_stale_parts(self.path)
            bandstore.write(
                self.path, keys, ids, {"archive_id": identity, "watermark": top, "tail": tail}
            )
        except OSError as exc:  # the file is a cache: the ingest goes on with the index in memory
            STATS["write_errors"] += 1
            logger.warning("band index %s not written, kept in memory: %s", self.path, exc)
            self.keys, self.ids, self.run_keys, self.run_ids = keys, ids, _EMPTY, _EMPTY
            self.file_watermark = -1
            return
        del keys, ids
        stored = bandstore.read(self.path, verify=False)
        self.keys, self.ids = stored.keys, stored.ids
        self.run_keys, self.run_ids = _EMPTY, _EMPTY
        self.file_watermark = top
        self.last_save_seconds = time.perf_counter() - started
        STATS["file_writes"] += 1
        logger.debug(
            "band index %s written: %d rows up to article %d", self.path, len(self.keys), top
        )

    # -- lookups -------------------------------------------------------------------------

    def _spans(self, bands: Sequence[int]) -> list[tuple[int, int, int, int, int]]:
        q = np.asarray([band_key(b) for b in bands], dtype=np.uint32)
        lo = np.searchsorted(self.keys, q, side="left")
        hi = np.searchsorted(self.keys, q, side="right")
        rlo = np.searchsorted(self.run_keys, q, side="left")
        rhi = np.searchsorted(self.run_keys, q, side="right")
        return list(
            zip(q.tolist(), lo.tolist(), hi.tolist(), rlo.tolist(), rhi.tolist(), strict=True)
        )

    def lookup(self, bands: Sequence[int], exclude: int) -> Counter[int]:
        """Article id -> number of bands shared with these band hashes."""
        found: Counter[int] = Counter()
        for key, a, b, ra, rb in self._spans(bands):
            extra = self.delta.get(key, [])
            if b - a + rb - ra + len(extra) > HOT_BAND:
                continue
            if b > a:
                found.update(self.ids[a:b].tolist())
            if rb > ra:
                found.update(self.run_ids[ra:rb].tolist())
            found.update(extra)
        found.pop(exclude, None)
        return found

    def held_by(self, article_id: int, bands: Sequence[int]) -> set[int]:
        """The keys of these bands that article_id already has rows for."""
        return {
            key
            for key, a, b, ra, rb in self._spans(bands)
            if article_id in self.ids[a:b].tolist()
            or article_id in self.run_ids[ra:rb].tolist()
            or article_id in self.delta.get(key, [])
        }


def archive_identity(con: duckdb.DuckDBPyConnection) -> str | None:
    """The archive's random id (migration 0017), None before it is migrated."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name = 'archive_identity'"
    ).fetchone()
    if not row or not row[0]:
        return None
    got = con.execute("SELECT min(archive_id) FROM archive_identity").fetchone()
    return str(got[0]) if got and got[0] is not None else None


def _tail(con: duckdb.DuckDBPyConnection, article_id: int) -> list[int]:
    rows = con.execute("SELECT hash FROM lsh_bands WHERE article_id = ?", [article_id]).fetchall()
    return sorted(int(r[0]) for r in rows)


def _check(con: duckdb.DuckDBPyConnection, header: dict[str, object], identity: str) -> None:
    """A file is used only if it was made from this archive and its last article's band rows
    are still there (a restored or rebuilt archive fails that)."""
    if header.get("archive_id") != identity:
        raise bandstore.BandFileError(
            f"made for archive {header.get('archive_id')}, this is {identity}"
        )
    watermark = header.get("watermark")
    if not isinstance(watermark, int):
        raise bandstore.BandFileError(f"watermark {watermark!r} is not an article id")
    tail = _tail(con, watermark)
    if not tail:
        raise bandstore.BandFileError(
            f"article {watermark} has no band rows in lsh_bands (archive restored?)"
        )
    stored = header.get("tail")
    # An edit since (refresh_bands) may have added rows to that article, never removed one.
    if not isinstance(stored, list) or not stored or not set(stored) <= set(tail):
        raise bandstore.BandFileError(f"band rows of article {watermark} differ from lsh_bands")


_INDEXES: dict[tuple[str, int, int] | int, BandIndex] = {}


def band_index(con: duckdb.DuckDBPyConnection) -> BandIndex:
    """The synced band index of this connection's database (one per file and process)."""
    for known in _INDEXES.values():
        if known.con is con:  # synced with this very connection already
            return known
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    path = row[0] if row else None
    key: tuple[str, int, int] | int
    band_path: Path | None = None
    if path and os.path.exists(path):
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_dev, st.st_ino)
        band_path = bandstore.band_file(os.path.realpath(path))
    else:
        key = id(con)  # in-memory database: one per connection
    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = BandIndex(band_path)
    index.sync(con)
    return index


def save_if_due(con: duckdb.DuckDBPyConnection) -> None:
    """At the end of a write session (archive.db.writer), after its last COMMIT: write the
    band file if the session took it past the threshold, so the next writer's open stays
    a map and a short read instead of a merge and a 336 MB write (3-4 s at 1M articles)."""
    for index in _INDEXES.values():
        if index.con is con and index.save_due:
            index.save(con)


def reset_band_indexes() -> None:
    """Forget every band index held by this process (tests, or a restored archive)."""
    _INDEXES.clear()
