"""The archive's file system and file misbehave: unwritable, full, corrupt, old; and the
query command is handed SQL that writes or is wrong. The user gets one line, the archive
keeps everything it had, and nothing fetched is lost."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from archive.batch import content_key
from archive.db import ArchiveError, writer
from archive.migrations import load_migrations
from pipelines.fingerprint import content_hash
from tests.conftest import outlet_config, run_cli, serving_outlet
from tests.fakeweb import FakeWeb
from tests.hostile.conftest import crawl_env, rows

ARTICLES = 5  # what one crawl of tests/conftest.py's build_outlet archives


@pytest.fixture(scope="module")
def outlet() -> Iterator[FakeWeb]:
    with serving_outlet() as web:
        yield web


def crawl(
    web: FakeWeb, tmp: Path, db: Path, timeout: float = 180, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp / "outlets.toml"
    if not config.exists():
        config.write_text(outlet_config(web.base))
    extra = ["--log", str(log)] if log else []
    return run_cli(
        "crawl", "--config", str(config), "--db", str(db), *extra, env=crawl_env(), timeout=timeout
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    err = result.stderr.strip()
    assert result.returncode != 0
    assert err.startswith("error: ") and "\n" not in err, f"not one line:\n{err[-2000:]}"
    return err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        why = f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root in a mount namespace"
        if os.environ.get("CI") == "true":
            pytest.fail(why, pytrace=False)  # CI runs as root: a failed mount is a broken machine
        pytest.skip(why)  # a developer's unprivileged shell: the full-disk tests cannot run


# -- unwritable and full -------------------------------------------------------------------


def test_archive_directory_under_a_file(outlet: FakeWeb, tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    result = crawl(outlet, tmp_path, tmp_path / "plain-file" / "archive.duckdb")
    assert "Not a directory" in one_line_error(result)


def test_read_only_file_system(outlet: FakeWeb, tmp_path: Path) -> None:
    """Root ignores file modes, so a read-only mount is how to make a directory unwritable."""
    ro = tmp_path / "ro"
    mount_tmpfs(ro, "ro,size=1m")
    try:
        result = crawl(outlet, tmp_path, ro / "archive.duckdb")
        assert "Read-only file system" in one_line_error(result)
    finally:
        subprocess.run(["umount", str(ro)], check=True)


@pytest.fixture(scope="module")
def full_disk(
    outlet: FakeWeb, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list]]:
    """A tmpfs holding the archive, filled with ballast until about 96 kB are left: the crawl's
    spool fits, the ingest does not. Then the ballast goes and the next crawl must archive
    everything, once. (The crawl log is kept off the small disk so the space left is known.)"""
    tmp = tmp_path_factory.mktemp("full")
    disk = tmp / "disk"
    mount_tmpfs(disk, "size=16m")
    db = disk / "archive.duckdb"
    try:
        with writer(db):
            pass
        ballast = disk / "ballast"
        with open(ballast, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        with open(ballast, "r+b") as fh:
            fh.truncate(max(0, ballast.stat().st_size - 96 * 1024))
        first = crawl(outlet, tmp, db, log=tmp / "first.log")
        ballast.unlink()
        second = crawl(outlet, tmp, db, log=tmp / "second.log")
        yield db, [first, second]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_loses_nothing_once_there_is_room(full_disk: tuple[Path, list]) -> None:
    db, (_first, second) = full_disk
    assert second.returncode == 0, second.stderr[-2000:]
    archived = rows(db, "SELECT count(*), count(DISTINCT canonical_url) FROM articles")
    assert archived == [(ARTICLES, ARTICLES)]
    assert rows(db, "SELECT count(*) - count(DISTINCT record_id) FROM pages") == [(0,)]


def test_a_full_disk_is_one_line(full_disk: tuple[Path, list]) -> None:
    _, (first, _) = full_disk
    assert "No space left on device" in one_line_error(first)


def test_a_checkpoint_on_a_full_disk_is_an_error_not_a_warning(tmp_path: Path) -> None:
    """The session's commit fits in the log, the checkpoint does not: the caller gets one
    ArchiveError saying the disk is full (a warning line, then the same error at the next
    write, was two lines for one cause), and the committed work is still there."""
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=8m")
    try:
        db = disk / "archive.duckdb"
        with writer(db):
            pass
        ballast = disk / "ballast"
        with open(ballast, "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 16384)
                fh.flush()
        text = "".join(f"word{i} " for i in range(20_000))  # ~150 kB: the log's, not a block's
        with open(ballast, "r+b") as fh:
            fh.truncate(max(0, ballast.stat().st_size - 200 * 1024))
        with (
            pytest.raises(ArchiveError, match="No space left on device") as info,
            writer(db) as con,
        ):
            con.execute("CREATE TABLE big AS SELECT ? AS t", [text])
        assert "\n" not in str(info.value)
        ballast.unlink()
        assert rows(db, "SELECT count(*) FROM big") == [(1,)], "the committed work is kept"
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# -- corrupt ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_archive_is_left_untouched_with_one_line(
    outlet: FakeWeb, tmp_path: Path, damage: str, migrated: Path
) -> None:
    db = tmp_path / "archive.duckdb"
    if damage == "garbage":
        db.write_bytes(b"this is not a duckdb file\n" * 4096)
    else:
        data = migrated.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    before = digest(db)
    query = run_cli("query", "SELECT count(*) FROM articles", "--db", str(db), timeout=60)
    assert "cannot open the archive" in one_line_error(query)
    result = crawl(outlet, tmp_path, db)
    assert "cannot open the archive" in one_line_error(result)
    assert digest(db) == before, "a corrupt archive must be left exactly as it was"
    assert not any(p.name.endswith(".creating") for p in tmp_path.iterdir())


# -- an archive from an older schema ---------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(outlet: FakeWeb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive with only 0001_core applied and one article in it, opened by today's crawl."""
    tmp = tmp_path_factory.mktemp("old")
    db = tmp / "archive.duckdb"
    name, sql = load_migrations()[0]
    assert name == "0001_core"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL "
        "DEFAULT now())"
    )
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations (name) VALUES ('0001_core')")
    now = datetime(2020, 1, 2, tzinfo=UTC)
    con.execute(
        "INSERT INTO pages (record_id, outlet, url, fetched_at, status) "
        "VALUES ('old-record', 'courrier', 'https://old.example/2019/a', ?, 200)",
        [now],
    )
    con.execute(
        "INSERT INTO articles (outlet, url, canonical_url, title, text, word_count, page_id, "
        "content_hash, first_seen_at, last_seen_at) VALUES ('courrier', 'https://old.example/2019/a', "
        "'https://old.example/2019/a', 'An article from the old days', 'Old text.', 2, 1, ?, ?, ?)",
        [content_hash("Old text."), now, now],
    )
    con.execute(
        "INSERT INTO article_urls VALUES ('https://old.example/2019/a', 1, 'canonical', ?)", [now]
    )
    con.close()
    result = crawl(outlet, tmp, db)
    assert result.returncode == 0, result.stderr[-3000:]
    return db


def test_an_old_archive_is_migrated_with_its_data(migrated: Path) -> None:
    applied = [r[0] for r in rows(migrated, "SELECT name FROM schema_migrations ORDER BY name")]
    assert applied == sorted(name for name, _ in load_migrations())
    assert rows(
        migrated, "SELECT title FROM articles WHERE url = 'https://old.example/2019/a'"
    ) == [("An article from the old days",)]
    assert rows(migrated, "SELECT count(*) FROM articles") == [(ARTICLES + 1,)]
    assert rows(migrated, "SELECT count(*) FROM pages WHERE record_id = 'old-record'") == [(1,)]
    # the later migrations' objects work on the old data
    assert rows(migrated, "SELECT count(*) FROM outlet_status WHERE outlet = 'courrier'") == [(1,)]
    key = content_key(content_hash("Old text."))
    assert rows(migrated, "SELECT content_key FROM articles WHERE id = 1") == [(key,)], (
        "an old article's exact-copy key is filled"
    )


def test_an_archive_with_older_views_gets_the_current_ones(tmp_path: Path) -> None:
    """Views are re-created from archive/views.sql when an archive holds other definitions:
    an upgrade brings new view columns to archives whose migrations are all applied."""
    db = tmp_path / "archive.duckdb"
    with writer(db):
        pass
    con = duckdb.connect(str(db))
    con.execute("CREATE OR REPLACE VIEW outlet_status AS SELECT 'stale' AS outlet")
    con.execute("DROP MACRO run_failed")
    con.execute("UPDATE schema_views SET digest = 'an older views.sql'")
    con.close()
    with writer(db):
        pass
    columns = [r[0] for r in rows(db, "DESCRIBE outlet_status")]
    assert "last_run_failure" in columns, columns
    assert rows(db, "SELECT run_failed('crashed', 0, 0, 0)") == [(True,)]
    with writer(db):  # an archive already current is left as it is
        pass
    assert len(rows(db, "SELECT * FROM schema_views")) == 1


# -- the query command cannot write, and says what is wrong ----------------------------------


WRITES = [
    "DELETE FROM articles",
    "UPDATE articles SET title = 'x'",
    "INSERT INTO crawl_runs (run_id, outlet, started_at, status) VALUES ('x', 'x', now(), 'ok')",
    "DROP TABLE articles",
    "CREATE TABLE stolen AS SELECT * FROM articles",
    "ALTER TABLE articles ADD COLUMN x INT",
    "COPY articles TO '{out}'",
    "ATTACH '{other}' AS other",
    "SELECT 1; DELETE FROM articles",
    "WITH gone AS (DELETE FROM articles RETURNING id) SELECT * FROM gone",
    "PRAGMA enable_external_access",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "CHECKPOINT",
    "SELECT * FROM read_text('/etc/hostname')",
]


@pytest.mark.parametrize("sql", WRITES)
def test_query_cannot_write(migrated: Path, tmp_path: Path, sql: str) -> None:
    before = digest(migrated)
    out, other = tmp_path / "out.csv", tmp_path / "other.duckdb"
    result = run_cli("query", sql.format(out=out, other=other), "--db", str(migrated), timeout=60)
    one_line_error(result)
    assert result.stdout == ""
    assert not out.exists() and not other.exists()
    assert digest(migrated) == before, "the archive changed"


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELEC title FROM articles", "syntax error"),
        ("SELECT nope FROM articles", "nope"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT 1/0::INT, 'a'::INT", "Could not convert"),
        ("", "no SQL"),
    ],
)
def test_query_errors_are_one_line(migrated: Path, sql: str, words: str) -> None:
    result = run_cli("query", sql, "--db", str(migrated), timeout=60)
    assert words.lower() in one_line_error(result).lower()


def test_query_reads_while_crawls_are_done(migrated: Path) -> None:
    result = run_cli(
        "query",
        "SELECT count(*) AS n FROM articles",
        "--db",
        str(migrated),
        "--format",
        "csv",
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.split() == ["n", str(ARTICLES + 1)]


def test_copy_of_an_archive_with_a_wal_is_readable(migrated: Path, tmp_path: Path) -> None:
    """Sanity for the crash tests: a copy of the archive files opens read-only."""
    for p in migrated.parent.glob(migrated.name + "*"):
        shutil.copy(p, tmp_path / p.name)
    assert rows(tmp_path / migrated.name, "SELECT count(*) FROM articles") == [(ARTICLES + 1,)]
