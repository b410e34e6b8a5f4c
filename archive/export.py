"""Export a slice of the archive (time range and/or outlets) to Parquet, CSV, JSONL or WARC.

Parquet, CSV and JSONL are written by DuckDB's COPY (streaming, typed, no pyarrow); WARC
by warcio from the raw pages kept in `pages.html_gz`, so another tool can replay or
re-extract exactly what was fetched. The archive is opened read-only and sandboxed to the
output path.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import duckdb

from archive.db import ArchiveError
from archive.outputs import (
    OutputError,
    atomic_directory,
    atomic_file,
    check_file_output,
    check_not_archive,
    temp_path,
)
from archive.query import QueryError, _literal, check_outlets, condense_error, open_archive

FORMATS = ("parquet", "csv", "jsonl", "warc")
DATE_FIELDS = {"published": "published_at", "first_seen": "first_seen_at"}

# The columns users get; text is the cleaned, promo-stripped text. `canonical_url` is the
# page's own canonical URL; `dedup_key` the normalised URL articles are deduplicated on
# (articles.canonical_url in the archive).
_COLUMNS = (
    "id", "outlet", "url", "page_canonical_url AS canonical_url", "canonical_url AS dedup_key", "title",
    "authors", "published_at", "modified_at", "date_source", "language", "section", "tags", "description",
    "summary", "image_url", "site_name", "text", "word_count", "paywalled", "promo_flagged", "content_hash",
    "feed_title", "feed_published_at", "discovered_via", "cross_site_canonical", "cluster_id", "version",
    "extractor_version", "first_seen_at", "last_seen_at",
)  # fmt: skip
_TIMESTAMPS = ("published_at", "modified_at", "feed_published_at", "first_seen_at", "last_seen_at")
_LISTS = ("authors", "tags")


def _iso(column: str) -> str:
    """A TIMESTAMPTZ as ISO 8601 in UTC, exactly as Python's isoformat() writes it (and so as
    `mediawatch query` and `search` print it): 2024-05-17T06:30:00+00:00, microseconds when set."""
    utc = f"timezone('UTC', a.{column})"
    return (
        f"CASE WHEN epoch_us(a.{column}) % 1000000 = 0 THEN strftime({utc}, '%Y-%m-%dT%H:%M:%S+00:00') "
        f"ELSE strftime({utc}, '%Y-%m-%dT%H:%M:%S.%f+00:00') END AS {column}"
    )


def select_columns(fmt: str) -> str:
    """The exported columns for one format: Parquet keeps DuckDB's types; CSV and JSONL get
    ISO 8601 timestamps, and CSV list cells as JSON arrays (as `mediawatch query` writes them)."""
    out = []
    for spec in _COLUMNS:
        name = spec.split(" AS ")[-1]
        if fmt in ("csv", "jsonl") and name in _TIMESTAMPS:
            out.append(_iso(name))
        elif fmt == "csv" and name in _LISTS:
            out.append(f"CAST(to_json(a.{name}) AS VARCHAR) AS {name}")
        else:
            out.append(f"a.{spec}")
    return ", ".join(out)


@dataclass
class Selection:
    """Which articles: a half-open time range on one date field, and/or some outlets."""

    since: datetime | None = None
    until: datetime | None = None
    outlets: Sequence[str] = ()
    date_field: str = "published"
    params: dict[str, Any] = field(default_factory=dict, init=False)

    def where(self) -> str:
        column = DATE_FIELDS.get(self.date_field)
        if column is None:
            raise QueryError(
                f"unknown date field {self.date_field!r} (one of {', '.join(DATE_FIELDS)})"
            )
        clauses = ["TRUE"]
        self.params = {}
        if self.since is not None:
            clauses.append(f"a.{column} >= $since")
            self.params["since"] = self.since
        if self.until is not None:
            clauses.append(f"a.{column} < $until")
            self.params["until"] = self.until
        if self.outlets:
            clauses.append("list_contains($outlets, a.outlet)")
            self.params["outlets"] = list(self.outlets)
        return " AND ".join(clauses)


def parse_when(text: str | None, *, end: bool = False) -> datetime | None:
    """ISO date or datetime; naive means UTC. A bare date as an end means the end of that day."""
    if text is None or text == "":
        return None
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryError(f"bad date {text!r}: use YYYY-MM-DD or an ISO 8601 date-time") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def export(
    db: str | os.PathLike[str],
    output: str | os.PathLike[str],
    fmt: str,
    selection: Selection | None = None,
    *,
    overwrite: bool = False,
) -> int:
    """Write the selected articles (or, for WARC, their pages) to `output`; return the count.

    Parquet goes to a directory, partitioned `outlet=<outlet>/day=<UTC day>/` (day of
    publication, or of first sighting when undated); the other formats to one file.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    sel = selection or Selection()
    where = sel.where()
    try:
        out = check_not_archive(output, db)
        if fmt == "parquet":
            if out.exists() and not out.is_dir():
                raise OutputError(f"{out}: exists and is not a directory")
            if out.exists() and any(out.iterdir()) and not overwrite:
                raise OutputError(f"{out}: exists and is not an empty directory (use --overwrite)")
        else:
            out = check_file_output(output, db, overwrite=overwrite)
    except OutputError as exc:
        raise QueryError(str(exc)) from exc
    tmp = temp_path(out)
    try:
        con = open_archive(
            db, sandbox=True, timezone="UTC", fts=False,
            allowed_paths=[tmp] if fmt != "warc" else [],
            allowed_directories=[tmp] if fmt == "parquet" else [],
        )  # fmt: skip
    except ArchiveError as exc:
        raise QueryError(str(exc)) from exc
    try:
        check_outlets(con, sel.outlets)  # a typo must not write an empty file
        if fmt == "warc":
            with atomic_file(out) as part:
                return _export_warc(con, part, out.name, where, sel.params)
        select = f"SELECT {select_columns(fmt)} FROM articles a WHERE {where}"
        if fmt == "parquet":
            # Into a fresh directory, then moved over what an earlier export wrote.
            with atomic_directory(out, replace_children="outlet=") as part:
                sql = (
                    f"COPY (SELECT *, CAST(timezone('UTC', coalesce(published_at, first_seen_at)) AS DATE) AS day "
                    f"FROM ({select}) ORDER BY outlet, day, id) TO {_literal(str(part))} "
                    "(FORMAT parquet, PARTITION_BY (outlet, day), OVERWRITE_OR_IGNORE true)"
                )
                row = con.execute(sql, sel.params or None).fetchone()
            return int(row[0]) if row else 0
        with atomic_file(out) as part:
            if fmt == "csv":
                sql = f"COPY ({select} ORDER BY a.id) TO {_literal(str(part))} (FORMAT csv, HEADER true)"
            else:
                sql = f"COPY ({select} ORDER BY a.id) TO {_literal(str(part))} (FORMAT json)"
            row = con.execute(sql, sel.params or None).fetchone()
        return int(row[0]) if row else 0
    except duckdb.Error as exc:
        raise QueryError(condense_error(exc)) from exc
    finally:
        con.close()


def _status_line(status: int | None) -> str:
    code = status or 200
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _export_warc(
    con: duckdb.DuckDBPyConnection, out: Path, name: str, where: str, params: dict[str, Any]
) -> int:
    """One response record per archived page of the selected articles, after a warcinfo."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    cur = con.execute(
        f"""
        SELECT p.id, coalesce(p.final_url, p.url) AS url, p.status, p.content_type,
               p.fetched_at, p.html_gz, p.outlet, p.article_id
        FROM pages p
        WHERE p.html_gz IS NOT NULL
          AND p.article_id IN (SELECT a.id FROM articles a WHERE {where})
        ORDER BY p.fetched_at, p.id
        """,
        params or None,
    )
    count = 0
    with open(out, "wb") as f:
        writer = WARCWriter(f, gzip=name.endswith(".gz"))
        info = {
            "software": "mediawatch",
            "format": "WARC File Format 1.1",
            "description": "raw pages of archived articles; HTTP headers reduced to Content-Type",
        }
        writer.write_record(writer.create_warcinfo_record(name, info))
        while rows := cur.fetchmany(500):
            for page_id, url, status, ctype, fetched_at, html_gz, outlet, article_id in rows:
                body = gzip.decompress(html_gz)
                # We keep no original headers: only the content type and the length.
                http_headers = StatusAndHeaders(
                    _status_line(status),
                    [("Content-Type", ctype or "text/html"), ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )
                when = fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http_headers,
                    warc_headers_dict={
                        "WARC-Date": when,
                        "X-Mediawatch-Outlet": outlet,
                        "X-Mediawatch-Page-Id": str(page_id),
                        "X-Mediawatch-Article-Id": str(article_id),
                    },
                )  # fmt: skip
                writer.write_record(record)
                count += 1
    return count
