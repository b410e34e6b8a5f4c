"""One string names the archive (`--db`, `MEDIAWATCH_DB`): a path is the embedded DuckDB file,
`postgresql://USER@HOST:PORT/DBNAME?data=DIR_OR_S3_PREFIX` is the lake (catalog and state in
PostgreSQL, Parquet data in DIR or under the S3 prefix). Parsed once, here, so every command
says the same thing about a malformed URL and none hangs on a server that does not answer."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from archive.db import ArchiveError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 5  # seconds: libpq's connect_timeout, for psycopg and the postgres extension
_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FORM = "postgresql://USER@HOST:PORT/DBNAME?data=DIR_OR_S3_PREFIX"


@dataclass(frozen=True)
class LakeTarget:
    """A lake: PostgreSQL database `dbname` and the data location (absolute directory or s3://)."""

    user: str
    host: str
    port: int
    dbname: str
    data: str
    password: str | None = None

    def libpq(self, *, read_only: bool = False, application_name: str | None = None) -> str:
        """libpq key=value string (the postgres extension and psycopg both take it). `read_only`
        makes every transaction of the session read-only on the server: a reader's SQL reaching
        PostgreSQL through the extension (postgres_execute) cannot write either."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": self.dbname,
            "connect_timeout": str(CONNECT_TIMEOUT),
        }
        if application_name:  # how a lake writer is known alive (archive/lake/claims.py)
            parts["application_name"] = application_name
        if read_only:
            parts["options"] = "-c default_transaction_read_only=on"
        if self.password is not None:
            parts["password"] = self.password
        return " ".join(f"{k}={_libpq_value(v)}" for k, v in parts.items())

    def display(self) -> str:
        """The URL without a password, for messages."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}?data={self.data}"


def _libpq_value(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_lake(db: str | os.PathLike[str]) -> bool:
    """Does this archive string name a lake (a postgresql:// URL) rather than a file?"""
    return isinstance(db, str) and db.lower().startswith(tuple(f"{s}://" for s in _SCHEMES))


def parse_target(db: str | os.PathLike[str]) -> Path | LakeTarget:
    """A Path for the embedded file, a LakeTarget for a URL; ArchiveError names what is wrong."""
    if not isinstance(db, str):
        return Path(db)
    if not _URL.match(db):
        return Path(db)
    scheme = db.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ArchiveError(
            f"{db}: unknown archive URL scheme {scheme!r} (a path is a DuckDB file; "
            f"a lake is {_FORM})"
        )
    return _parse_lake(db)


def _parse_lake(db: str) -> LakeTarget:
    try:
        parts = urlsplit(db)
        port = parts.port
    except ValueError as exc:
        raise ArchiveError(
            f"{hide_password(db)}: bad port in the lake URL ({exc}); expected {_FORM}"
        ) from None
    shown = hide_password(db)
    if not parts.username:
        raise ArchiveError(
            f"{shown}: the lake URL names no user (USER@ before the host); expected {_FORM}"
        )
    if not parts.hostname:
        raise ArchiveError(f"{shown}: the lake URL names no host; expected {_FORM}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ArchiveError(
            f"{shown}: the lake URL needs one database name after the host (/DBNAME); "
            f"expected {_FORM}"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"data"})
    if unknown:
        raise ArchiveError(
            f"{shown}: unknown lake URL parameter {unknown[0]!r} (only ?data=DIR_OR_S3_PREFIX)"
        )
    values = query.get("data", [])
    if len(values) != 1 or not values[0].strip():
        raise ArchiveError(
            f"{shown}: the lake URL needs ?data=DIR_OR_S3_PREFIX (where the Parquet files go)"
        )
    return LakeTarget(
        user=unquote(parts.username),
        host=parts.hostname,
        port=port or 5432,
        dbname=dbname,
        data=_data_location(values[0].strip(), shown),
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _data_location(data: str, shown: str) -> str:
    """An s3:// prefix as given, a directory made absolute: every machine must name the same files."""
    if data.startswith("s3://"):
        if len(data) <= len("s3://") or data[len("s3://") :].startswith("/"):
            raise ArchiveError(f"{shown}: data={data!r} names no bucket (s3://BUCKET/PREFIX/)")
        return data if data.endswith("/") else data + "/"
    if _URL.match(data):
        raise ArchiveError(
            f"{shown}: data={data!r}: only a directory or an s3:// prefix is supported"
        )
    return str(Path(data).expanduser().resolve()) + os.sep


def hide_password(db: str) -> str:
    """The URL with any password replaced, so an error line never prints it."""
    return re.sub(r"(:/+[^:/@]*:)[^@/]*@", r"\1***@", db)


def check_reachable(target: LakeTarget) -> None:
    """Connect once (bounded by CONNECT_TIMEOUT); ArchiveError in one line when it fails."""
    import psycopg

    try:
        psycopg.connect(target.libpq()).close()
    except psycopg.OperationalError as exc:
        raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None


@contextlib.contextmanager
def pg_session(target: LakeTarget, *, read_only: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A session with the lake's PostgreSQL (committed on leaving, as psycopg's `with`); a lost
    or refused connection, then or during it, is an ArchiveError in one line naming the lake."""
    import psycopg

    try:
        with psycopg.connect(target.libpq(read_only=read_only)) as pg:
            yield pg
    except psycopg.OperationalError as exc:
        raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None


def unreachable(exc: BaseException) -> str:
    """libpq's multi-line connection error as one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    for line in lines:  # the reason is usually on the first line after the server address
        if "failed:" in line:
            text = line.split("failed:", 1)[1].strip() or text
            break
    return f"cannot reach the lake's PostgreSQL: {text}"
