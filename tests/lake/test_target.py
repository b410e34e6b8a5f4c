"""One string names the archive: a path is the file, a postgresql:// URL is the lake, and a
malformed URL or a silent server is one line naming what is wrong, never a hang."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from archive.db import ArchiveError
from archive.target import CONNECT_TIMEOUT, LakeTarget, check_reachable, parse_target
from tests import pg
from tests.conftest import run_cli


def test_a_path_is_the_embedded_file() -> None:
    assert parse_target("data/archive.duckdb") == Path("data/archive.duckdb")
    assert parse_target(Path("/x/a.duckdb")) == Path("/x/a.duckdb")
    assert parse_target("C:archive.duckdb") == Path("C:archive.duckdb")


def test_a_postgresql_url_is_the_lake(tmp_path: Path) -> None:
    target = parse_target(f"postgresql://mw@db.internal:6432/news?data={tmp_path}/lake")
    assert target == LakeTarget(
        user="mw", host="db.internal", port=6432, dbname="news", data=f"{tmp_path}/lake/"
    )
    assert (
        "dbname=news" in target.libpq() and f"connect_timeout={CONNECT_TIMEOUT}" in target.libpq()
    )
    s3 = parse_target("postgres://mw:secret@127.0.0.1/news?data=s3://bucket/archive")
    assert isinstance(s3, LakeTarget) and s3.port == 5432 and s3.data == "s3://bucket/archive/"
    assert "secret" not in s3.display()


def test_a_relative_data_directory_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = parse_target("postgresql://mw@h:5432/news?data=lake")
    assert isinstance(target, LakeTarget) and target.data == f"{tmp_path}/lake/"


@pytest.mark.parametrize(("url", "names"), [
    ("postgresql://h:5432/news?data=/d", "no user"),
    ("postgresql://mw@:5432/news?data=/d", "no host"),
    ("postgresql://mw@h:port/news?data=/d", "bad port"),
    ("postgresql://mw@h:5432/?data=/d", "database name"),
    ("postgresql://mw@h:5432/news", "?data="),
    ("postgresql://mw@h:5432/news?data=", "?data="),
    ("postgresql://mw@h:5432/news?data=/d&size=3", "unknown lake URL parameter 'size'"),
    ("postgresql://mw@h:5432/news?data=s3://", "names no bucket"),
    ("postgresql://mw@h:5432/news?data=gs://b/p", "only a directory or an s3:// prefix"),
    ("mysql://mw@h/news", "unknown archive URL scheme 'mysql'"),
])  # fmt: skip
def test_a_malformed_url_names_the_wrong_part_in_one_line(url: str, names: str) -> None:
    with pytest.raises(ArchiveError) as caught:
        parse_target(url)
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_a_password_never_shows_in_an_error() -> None:
    with pytest.raises(ArchiveError) as caught:
        parse_target("postgresql://mw:hunter2@h:5432/news")
    assert "hunter2" not in str(caught.value)


def test_nothing_listening_is_one_line_at_once(tmp_path: Path) -> None:
    target = parse_target(f"postgresql://postgres@127.0.0.1:{pg._free_port()}/x?data={tmp_path}")
    assert isinstance(target, LakeTarget)
    started = time.monotonic()
    with pytest.raises(ArchiveError) as caught:
        check_reachable(target)
    assert time.monotonic() - started < 2
    assert "cannot reach the lake's PostgreSQL" in str(caught.value) and "\n" not in str(
        caught.value
    )


def test_a_server_that_never_answers_times_out_instead_of_hanging(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        target = parse_target(f"postgresql://postgres@127.0.0.1:{port}/x?data={tmp_path}")
        assert isinstance(target, LakeTarget)
        started = time.monotonic()
        with pytest.raises(ArchiveError) as caught:
            check_reachable(target)
        waited = time.monotonic() - started
    assert CONNECT_TIMEOUT - 1 <= waited < CONNECT_TIMEOUT + 3
    assert "timeout" in str(caught.value).lower() and "\n" not in str(caught.value)


def test_a_running_server_is_reachable(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = parse_target(pg_server.url(pg_database, tmp_path))
    assert isinstance(target, LakeTarget)
    check_reachable(target)


@pytest.mark.parametrize(
    "command",
    [
        ("search", "élections"),
        ("query", "SELECT 1"),
        ("status",),
        ("export", "--format", "jsonl", "-o", "-"),
    ],
)
def test_a_reader_command_on_an_unreachable_lake_says_so_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pg._free_port()}/x?data={tmp_path}"
    result = run_cli(*command, "--db", url, timeout=30)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot reach the lake's PostgreSQL" in result.stderr and "127.0.0.1" in result.stderr
