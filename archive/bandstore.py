"""The band index persisted beside the archive (``<db>.bands``), memory-mapped by writers.

Why: sorting lsh_bands into the in-memory index cost 23-52 s and 336 MB at 1M articles in
every process that opened the archive for writing (each ``mediawatch crawl`` paid it again).
This file holds the same sorted arrays; a writer maps it in well under a second and reads
from lsh_bands only the rows above its watermark. lsh_bands stays the truth: archive.dedup
checks the header against it on every open and rebuilds the file when they disagree.

One file, so one rename replaces it whole: a kill -9 while writing leaves the old file (or
none) and a ``.tmp-<pid>`` part that the next writer removes. Layout, little-endian:

    MAGIC (8 bytes) | header length (uint32) | JSON header | zero padding to 64 bytes
    | keys uint32[rows] | ids uint32[rows]

The header names the archive (``archive_identity``), the watermark (highest article id
covered), the row count, the band hashes stored for the watermark's article (a restored or
replaced archive fails that check) and a CRC-32 of the arrays (a damaged file fails it).
No SQL here: archive.dedup compares the header with the table.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"MWBANDS\x01"
VERSION = 1
_ALIGN = 64
_CRC_CHUNK = 1 << 24  # bytes per crc32 call: bounded temporary memory on a mapped file


class BandFileError(Exception):
    """The file cannot be used as it is; the message says why (logged by the caller)."""


@dataclass(frozen=True)
class StoredBands:
    """A validated band file: its header and its arrays (read-only memory maps)."""

    header: dict[str, Any]
    keys: np.ndarray
    ids: np.ndarray


def band_file(db_path: str | os.PathLike[str]) -> Path:
    """Where the band index of this archive lives: beside it, named after it."""
    p = Path(db_path)
    return p.with_name(p.name + ".bands")


def _crc(*arrays: np.ndarray) -> int:
    crc = 0
    for arr in arrays:
        raw = arr.data.cast("B")
        for start in range(0, len(raw), _CRC_CHUNK):
            crc = zlib.crc32(raw[start : start + _CRC_CHUNK], crc)
    return crc


def _data_offset(header_len: int) -> int:
    return -(-(len(MAGIC) + 4 + header_len) // _ALIGN) * _ALIGN


def write(path: Path, keys: np.ndarray, ids: np.ndarray, header: dict[str, Any]) -> None:
    """Write the arrays and header to ``path`` atomically (temporary file, fsync, rename)."""
    keys = np.ascontiguousarray(keys, dtype="<u4")
    ids = np.ascontiguousarray(ids, dtype="<u4")
    if keys.shape != ids.shape:
        raise ValueError(f"keys and ids differ in length ({len(keys)} and {len(ids)})")
    head = dict(header, version=VERSION, rows=len(keys), crc=_crc(keys, ids))
    blob = json.dumps(head, sort_keys=True).encode()
    offset = _data_offset(len(blob))
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + struct.pack("<I", len(blob)) + blob)
            fh.write(b"\0" * (offset - len(MAGIC) - 4 - len(blob)))
            fh.write(keys.data.cast("B"))
            fh.write(ids.data.cast("B"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def read(path: Path, *, verify: bool = True) -> StoredBands:
    """Map a band file read-only; BandFileError when it is missing, cut or damaged (the CRC
    is skipped with ``verify=False``, for a file this process has just written)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            lead = fh.read(len(MAGIC) + 4)
            if len(lead) < len(MAGIC) + 4 or lead[: len(MAGIC)] != MAGIC:
                raise BandFileError("not a band file (bad magic)")
            (header_len,) = struct.unpack("<I", lead[len(MAGIC) :])
            if header_len > 1 << 20:
                raise BandFileError(f"header length {header_len} is absurd")
            blob = fh.read(header_len)
    except FileNotFoundError:
        raise BandFileError("no band file") from None
    except OSError as exc:
        raise BandFileError(f"unreadable: {exc}") from exc
    try:
        header = json.loads(blob)
        rows = int(header["rows"])
        crc = int(header["crc"])
        version = header["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BandFileError(f"header unreadable: {exc}") from exc
    if version != VERSION:
        raise BandFileError(f"version {version}, this code reads {VERSION}")
    offset = _data_offset(header_len)
    if size != offset + 8 * rows:
        raise BandFileError(f"{size} bytes where the header's {rows} rows need {offset + 8 * rows}")
    if rows == 0:
        empty = np.zeros(0, dtype=np.uint32)
        return StoredBands(header, empty, empty)
    keys = np.memmap(path, dtype="<u4", mode="r", offset=offset, shape=(rows,))
    ids = np.memmap(path, dtype="<u4", mode="r", offset=offset + 4 * rows, shape=(rows,))
    if verify and _crc(keys, ids) != crc:
        raise BandFileError("checksum mismatch (damaged file)")
    return StoredBands(header, keys, ids)


def remove_stale_parts(path: Path) -> int:
    """Delete parts left by a writer killed while writing (the caller holds the archive's
    write lock, so no other process is writing one). Returns how many went."""
    gone = 0
    for part in path.parent.glob(f"{path.name}.tmp-*"):
        if part.name != f"{path.name}.tmp-{os.getpid()}":
            part.unlink(missing_ok=True)
            gone += 1
    return gone
