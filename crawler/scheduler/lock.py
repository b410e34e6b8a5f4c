"""One daemon per archive: an flock beside it, free again when the holder dies (even -9)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from archive.db import ArchiveError


def lock_path(db: Path | str) -> Path:
    """Where the daemon lock of an archive is (beside the file, not beside a symlink to it; for
    a lake, in this machine's home for it: one daemon per home, many per lake)."""
    from archive.target import is_lake

    if is_lake(db):
        from archive.lake.home import lake_home

        return lake_home(str(db)) / "daemon.lock"
    db = Path(db).resolve()
    return db.with_name(db.name + ".daemon.lock")


class DaemonLock:
    """An flock beside the archive; the file holds the holder's pid (`kill -HUP $(cat ...)`)."""

    def __init__(self, db: Path | str) -> None:
        self.path = lock_path(db)  # a symlink to the archive (or its directory) is the same archive
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ArchiveError(
                f"another mediawatch daemon (pid {holder}) is running on this archive "
                f"(lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
