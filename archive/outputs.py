"""Where a reader command may write: never onto the archive or its companions, never over
an existing file without `overwrite`, never over anything but a regular file, and always
through a temporary file renamed into place (a failed or killed write leaves the old
output whole, or none).

`mediawatch query --output data/archive.duckdb` once truncated the archive to 6 bytes:
paths are compared after resolving symlinks, and every file beside the archive whose
name starts with the archive's name (`.wal`, `.daemon.lock`, `.daemon-config.toml`, ...)
is protected, as is the spool directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path


class OutputError(Exception):
    """An output path we refuse, as one line."""


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_not_archive(output: str | os.PathLike[str], db: str | os.PathLike[str]) -> Path:
    """The resolved output path; OutputError if it is (or is inside) the archive, its log,
    locks, snapshots or spool."""
    out = Path(output).resolve()
    archive = Path(db).resolve()
    from archive.spool import spool_dir_for  # the spool's records module: not on a reader's start

    spool = spool_dir_for(archive).resolve()
    if out == archive:
        raise OutputError(f"{output}: is the archive itself; choose another output file")
    if out.parent == archive.parent and out.name.startswith(archive.name + "."):
        raise OutputError(
            f"{output}: belongs to the archive {archive} (its log, lock or state); "
            "choose another output file"
        )
    if _inside(out, spool) or _inside(archive, out):
        raise OutputError(
            f"{output}: holds the archive's spool or the archive; choose another output"
        )
    return out


def check_file_output(
    output: str | os.PathLike[str], db: str | os.PathLike[str], *, overwrite: bool
) -> Path:
    """Resolved path of a one-file output, after the checks; raise OutputError otherwise."""
    out = check_not_archive(output, db)
    try:
        st = out.stat()
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise OutputError(f"{output}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{output}: is a directory; this format writes one file")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{output}: exists and is not a regular file; it is never replaced")
    if not overwrite:
        raise OutputError(f"{output}: exists (use --overwrite to replace it)")
    return out


def temp_path(out: Path) -> Path:
    """A fresh hidden name beside `out`, on the same file system, for an atomic rename."""
    return out.with_name(f".{out.name}.{os.getpid()}.part")


@contextlib.contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary path; on success rename it onto `out`, on failure remove it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        if not tmp.exists():  # the writer produced nothing (e.g. an empty COPY): an empty file
            tmp.touch()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(out: Path, *, replace_children: str) -> Iterator[Path]:
    """Yield a temporary directory; on success move its children into `out`, first removing
    the children of `out` whose names start with `replace_children` (what an earlier export
    wrote: other files a user put there are kept)."""
    tmp = temp_path(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        for child in out.iterdir():
            if (
                child.name.startswith(replace_children)
                and child.is_dir()
                and not child.is_symlink()
            ):
                shutil.rmtree(child)
        for child in tmp.iterdir():
            os.replace(child, out / child.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
