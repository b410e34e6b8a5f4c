"""Read-only SQL over the archive: statement checks, named parameters, output formats.

Two independent locks keep `mediawatch query` read-only whatever the statement: the file is
opened read-only (DuckDB refuses any write to the archive), and only SELECT-like statements
are accepted (no COPY, EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA, CALL...). On top, the
connection is sandboxed: no file access except the one output file, configuration locked.

Notebook use, in any Python with duckdb (no mediawatch or pandas needed)::

    import duckdb
    con = duckdb.connect("data/archive.duckdb", read_only=True)
    con.sql("SELECT outlet, sum(articles) FROM articles_per_outlet_day GROUP BY 1").show()
    con.close()           # close soon: the ingest cannot write while a reader is open

`open_archive` below does the same and retries while the ingest holds its write lock; given
a lake URL (postgresql://USER@HOST:PORT/DBNAME?data=DIR) it attaches the lake read-only,
with the same view names (README "The archive on a lake").
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import duckdb

from archive.db import ArchiveError, connect_read
from archive.outputs import OutputError, atomic_file, check_file_output, temp_path
from archive.target import is_lake

FORMATS = ("table", "csv", "json", "jsonl", "parquet")
_ST = duckdb.StatementType
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^()]*\)\s*)?", re.IGNORECASE)
_BATCH = 5000


class QueryError(Exception):
    """A refused or failed query, as one line a user can act on."""


def _literal(text: str) -> str:
    """A single-quoted SQL string literal; for the few places that take no parameters."""
    if "\x00" in text:
        raise QueryError("path contains a NUL byte")
    return "'" + text.replace("'", "''") + "'"


def _directory_prefix(path: str | os.PathLike[str]) -> str:
    """What DuckDB's allowed_directories matches: an absolute directory, or an s3:// prefix."""
    text = os.fspath(path)
    if text.startswith("s3://"):
        return text if text.endswith("/") else text + "/"
    return str(Path(text).resolve()) + os.sep


def open_archive(
    path: str | os.PathLike[str],
    *,
    sandbox: bool = False,
    allowed_paths: Sequence[str | os.PathLike[str]] = (),
    allowed_directories: Sequence[str | os.PathLike[str]] = (),
    timezone: str | None = None,
    fts: bool = True,
    retries: int = 60,
) -> duckdb.DuckDBPyConnection:
    """Open the archive read-only, with the views and `stem()` available.

    Retries while the ingest holds the write lock. With `sandbox`, the connection can touch
    no file but `allowed_paths` / `allowed_directories`, and its settings are locked.
    `timezone` (e.g. "UTC") fixes how TIMESTAMPTZ values are shown and cast to dates.
    `fts` loads the fts extension (`stem()`, needed by search); it costs ~0.1 s an open.
    """
    lake_dirs: list[str] = []
    if is_lake(path):  # a postgresql:// URL: the lake, attached read-only (archive/lake/connect.py)
        from archive.lake.connect import open_lake_reader

        con, lake_dirs = open_lake_reader(str(path))
    else:
        con = connect_read(path, retries=retries)
    try:
        if fts:
            from archive.search import load_fts  # only for a statement naming search_articles

            load_fts(con)
        if timezone is not None:
            con.execute(f"SET TimeZone = {_literal(timezone)}")
        if sandbox:
            paths = ", ".join(_literal(str(Path(p).resolve())) for p in allowed_paths)
            dirs = ", ".join(
                _literal(_directory_prefix(p)) for p in [*allowed_directories, *lake_dirs]
            )
            con.execute(f"SET allowed_paths = [{paths}]")
            con.execute(f"SET allowed_directories = [{dirs}]")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


_POSITION = re.compile(r"^LINE (\d+): ?(.*)$")


def condense_error(exc: BaseException | str, sql: str | None = None) -> str:
    """DuckDB's multi-line error as one line, keeping the position (`LINE n, column c`)."""
    text = str(exc).strip()
    lines = text.splitlines()
    parts: list[str] = []
    where = ""
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        m = _POSITION.match(line)
        if m:
            lineno, excerpt = int(m.group(1)), m.group(2)
            caret = lines[i + 1] if i + 1 < len(lines) else ""
            rel = caret.find("^") - (len(line) - len(excerpt)) if "^" in caret else -1
            if rel >= 0:
                col = rel + _excerpt_offset(excerpt, sql, lineno)
                near = excerpt[rel:].removesuffix("...")[:40].strip()
                where = f"LINE {lineno}, column {col + 1}" + (f": {near}" if near else "")
            else:
                where = f"LINE {lineno}: {excerpt.strip()}"
            i += 2
            continue
        if line.strip():
            parts.append(line.strip())
        i += 1
    message = " ".join(parts) or type(exc).__name__
    message = re.sub(r"\s+", " ", message)
    return f"{message} (at {where})" if where else message


def _excerpt_offset(excerpt: str, sql: str | None, lineno: int) -> int:
    """DuckDB shortens long lines to "...excerpt...": find where the excerpt starts."""
    if not excerpt.startswith("...") or sql is None:
        return 0
    src_lines = sql.splitlines()
    if lineno - 1 >= len(src_lines):
        return 0
    body = excerpt[3:].removesuffix("...")
    pos = src_lines[lineno - 1].find(body[:40])
    return pos - 3 if pos >= 3 else 0


def _refuse(what: str) -> QueryError:
    return QueryError(
        f"refused: {what} is not allowed; mediawatch query is read-only "
        "(SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN SELECT)"
    )


def _what(stmt: duckdb.Statement) -> str:
    """How the user wrote it ("INSTALL") and what DuckDB calls it (a LOAD statement)."""
    words = re.findall(r"[A-Za-z]+", stmt.query)
    word = words[0].upper() if words else stmt.type.name
    return word if word == stmt.type.name else f"{word} (a {stmt.type.name} statement)"


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """Return the one statement of `sql` if it only reads; raise QueryError otherwise.

    EXPLAIN is checked on what it explains: EXPLAIN ANALYZE runs the statement.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(condense_error(exc, sql)) from exc
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    stmt = statements[0]
    if stmt.type == _ST.EXPLAIN:
        m = _EXPLAIN_PREFIX.match(stmt.query)
        if not m:
            raise _refuse("this form of EXPLAIN")
        inner = check_read_only(con, stmt.query[m.end() :])
        if inner.type != _ST.SELECT:
            raise _refuse(f"EXPLAIN {_what(inner)}")
        return stmt
    if stmt.type != _ST.SELECT:
        raise _refuse(_what(stmt))
    return stmt


def bind_params(stmt: duckdb.Statement, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Match `-p name=value` to the statement's `$name` placeholders, with clear errors."""
    wanted = set(stmt.named_parameters)
    if any(name.isdigit() for name in wanted):
        raise QueryError("use named parameters ($name with -p name=VALUE), not ? or $1")
    missing = sorted(wanted - set(params))
    if missing:
        raise QueryError(
            "missing parameter " + ", ".join(f"${n} (pass -p {n}=VALUE)" for n in missing)
        )
    unused = sorted(set(params) - wanted)
    if unused:
        raise QueryError("parameter not used by the query: " + ", ".join(unused))
    return {name: params[name] for name in wanted} if wanted else None


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """`name=value` strings to a dict. Values stay strings: cast in SQL ($n::INTEGER)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise QueryError(f"bad parameter {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a DuckDB value (ISO dates, base64 blobs, exact decimals as strings)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _cell(value: Any) -> str:
    """A CSV / table cell: scalars as text, lists and structs as JSON."""
    v = jsonable(value)
    if v is None:
        return ""
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _batches(cur: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        rows = cur.fetchmany(_BATCH)
        if not rows:
            return
        yield rows


def write_rows(
    columns: list[str], batches: Iterable[list[tuple[Any, ...]]], fmt: str, stream: IO[str]
) -> int:
    """Stream rows as csv, json (one array), jsonl or a table; return the row count."""
    count = 0
    if fmt == "csv":
        w = csv.writer(stream)
        w.writerow(columns)
        for rows in batches:
            w.writerows([_cell(v) for v in row] for row in rows)
            count += len(rows)
    elif fmt in ("json", "jsonl"):
        sep = ",\n" if fmt == "json" else "\n"
        if fmt == "json":
            stream.write("[")
        for rows in batches:
            for row in rows:
                if count or fmt == "json":
                    stream.write(sep if count else "\n")
                obj = {c: jsonable(v) for c, v in zip(columns, row, strict=True)}
                stream.write(json.dumps(obj, ensure_ascii=False))
                count += 1
        stream.write("\n]\n" if fmt == "json" else ("\n" if count else ""))
    elif fmt == "table":
        all_rows = [row for rows in batches for row in rows]
        count = len(all_rows)
        print_table(columns, [[_cell(v) for v in row] for row in all_rows], stream)
    else:
        raise QueryError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return count


def print_table(columns: list[str], rows: list[list[str]], stream: IO[str]) -> None:
    """A rich table; wide when not on a terminal so pipes get whole cells.

    Cells and headers are rich `Text`, never markup: article text holds "[/button]" and
    "[update]", which Rich would otherwise parse (and crash on, or swallow)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, header_style="bold")
    for c in columns:
        table.add_column(Text(c), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    console = Console(file=stream, width=None if is_tty else 200, highlight=False, soft_wrap=False)
    console.print(table)
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", style="dim", markup=False)


def run_query(
    db: str | os.PathLike[str],
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    fmt: str = "table",
    output: str | os.PathLike[str] | None = None,
    stream: IO[str] | None = None,
    overwrite: bool = False,
) -> int:
    """Run one read-only statement and write its result; return the number of rows.

    An `output` is never the archive or one of its files, an existing one is replaced only
    with `overwrite`, and it is written to a temporary file renamed into place.

    Parquet is written by DuckDB itself (no pyarrow): a COPY we build around the checked
    statement, in a sandbox that may write that one file only.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "parquet" and output is None:
        raise QueryError("--format parquet needs --output FILE")
    out_path: Path | None = None
    if output is not None:
        try:
            out_path = check_file_output(output, db, overwrite=overwrite)
            if is_lake(db):
                from archive.lake.connect import check_output_outside

                check_output_outside(str(db), out_path)
        except OutputError as exc:
            raise QueryError(str(exc)) from exc
    tmp = temp_path(out_path) if out_path is not None else None
    try:
        con = open_archive(
            db, sandbox=True, timezone="UTC", fts="search_articles" in sql.lower(),  # its stem() needs fts
            allowed_paths=[tmp] if fmt == "parquet" and tmp else [],
        )  # fmt: skip
    except ArchiveError as exc:
        raise QueryError(str(exc)) from exc
    try:
        stmt = check_read_only(con, sql)
        bound = bind_params(stmt, params or {})
        if fmt == "parquet":
            assert out_path is not None
            with atomic_file(out_path) as part:
                body = stmt.query.strip().rstrip(";")
                copy = f"COPY (\n{body}\n) TO {_literal(str(part))} (FORMAT parquet)"
                wrapped = con.extract_statements(copy)
                if len(wrapped) != 1 or wrapped[0].type != _ST.COPY:  # the statement cannot escape
                    raise QueryError("cannot write this statement to Parquet")
                res = con.execute(copy, bound).fetchone()
            return int(res[0]) if res else 0
        cur = con.execute(sql, bound)
        columns = [d[0] for d in cur.description or []]
        if out_path is not None:
            with atomic_file(out_path) as part, open(part, "w", encoding="utf-8", newline="") as f:
                return write_rows(columns, _batches(cur), fmt, f)
        return write_rows(columns, _batches(cur), fmt, stream or sys.stdout)
    except duckdb.Error as exc:
        raise QueryError(condense_error(exc, sql)) from exc
    except OSError as exc:
        raise QueryError(f"{exc.filename or output}: {exc.strerror}") from exc
    finally:
        con.close()


def _close(name: str, known: Sequence[str], means: dict[str, str] | None = None) -> str:
    """ "; did you mean 'x'?" for the closest known name (or what it `means`), or nothing
    (stdlib difflib is enough)."""
    import difflib

    match = difflib.get_close_matches(name.lower(), [*known, *(means or {})], n=1, cutoff=0.6)
    return f"; did you mean {(means or {}).get(match[0], match[0])!r}?" if match else ""


def _column_values(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [r[0] for r in con.execute(sql).fetchall()]


def check_outlets(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Refuse outlet names the archive has never seen: a typo must not return nothing silently."""
    if not names:
        return
    known = _column_values(
        con, "SELECT outlet FROM articles UNION SELECT outlet FROM crawl_runs ORDER BY 1"
    )
    listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") or "none yet"
    for name in names:
        if name not in known:
            raise QueryError(
                f"--outlet: no outlet {name!r} in the archive{_close(name, known)} "
                f"(outlets: {listed})"
            )


def check_languages(con: duckdb.DuckDBPyConnection, codes: Sequence[str]) -> None:
    """Refuse language codes no article has: `--lang french` names `fr`, `--lang fre` too."""
    if not codes:
        return
    from archive.search import STEMMERS

    known = _column_values(
        con, "SELECT DISTINCT language FROM articles WHERE language IS NOT NULL ORDER BY 1"
    )
    by_name = {stemmer: code for code, stemmer in STEMMERS.items() if code in known}
    for code in codes:
        if code not in known:
            raise QueryError(
                f"--lang: no article in language {code!r}{_close(code, known, by_name)} "
                f"(ISO 639-1 codes in the archive: {', '.join(known) or 'none'})"
            )
