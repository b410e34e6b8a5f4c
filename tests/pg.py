"""A real PostgreSQL for the lake tests: the machine's server on 127.0.0.1:5432 (user postgres,
trust) when it answers within 2 s, else a throwaway cluster started from the installed binaries
(as an unprivileged user when we are root: initdb refuses root), else one line saying what to
install. Never a skip: a lake test without PostgreSQL fails, under CI=true as anywhere."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

DEFAULT_HOST, DEFAULT_PORT, USER = "127.0.0.1", 5432, "postgres"
CONNECT_TIMEOUT = 2
INSTALL_HINT = (
    "no PostgreSQL for the lake tests: nothing answers on 127.0.0.1:5432 and no initdb under "
    "/usr/lib/postgresql/*/bin (install it: apt-get install postgresql)"
)


class NoPostgres(Exception):
    """No server answers and none can be started: the one line says what to install."""


@dataclass
class Server:
    host: str
    port: int
    user: str = USER
    datadir: Path | None = None  # set when we started the cluster (and must stop it)
    bindir: Path | None = None
    run_as: list[str] | None = None

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname} connect_timeout={CONNECT_TIMEOUT}"

    def value(self, dbname: str, sql: str) -> Any:
        """The first column of the first row of `sql` in database `dbname`."""
        with psycopg.connect(self.conninfo(dbname)) as con:
            row = con.execute(sql).fetchone()
        return row[0] if row else None

    def url(self, dbname: str, data: str | os.PathLike[str]) -> str:
        """The archive string a user passes as --db for a lake in this database."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}?data={data}"

    def create_database(self) -> str:
        name = f"mw_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.datadir is None or self.bindir is None:
            return
        _pg_command(self.run_as or [], self.bindir, "pg_ctl", "-D", str(self.datadir),
                    "-m", "immediate", "-w", "stop", timeout=60)  # fmt: skip
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def answers(host: str, port: int) -> bool:
    try:
        with psycopg.connect(
            f"host={host} port={port} user={USER} dbname=postgres connect_timeout={CONNECT_TIMEOUT}"
        ):
            return True
    except psycopg.Error:
        return False


BINARIES = "/usr/lib/postgresql/*/bin/initdb"


def find_bindir(pattern: str = BINARIES) -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob(pattern), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged() -> tuple[list[str], int, int]:
    """The command prefix that drops root (setpriv, util-linux) and the uid/gid it becomes."""
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return (
            ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"],
            pw.pw_uid,
            pw.pw_gid,
        )
    raise NoPostgres("running as root and no unprivileged user (postgres, nobody) to run initdb as")


def _pg_command(
    run_as: list[str],
    bindir: Path,
    program: str,
    *args: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One of PostgreSQL's programs, as the unprivileged user when we are root."""
    return subprocess.run([*run_as, str(bindir / program), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)  # fmt: skip


def start_cluster(bindir: Path) -> Server:
    """initdb + pg_ctl start in a temporary directory, on a free port, trust auth on loopback."""
    top = Path(tempfile.mkdtemp(prefix="mediawatch-pg-"))
    datadir = top / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix, uid, gid = _unprivileged()
        os.chown(top, uid, gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    init = _pg_command(prefix, bindir, "initdb", "-D", str(datadir), "-U", USER,
                       "--auth=trust", "-E", "UTF8", env=env, timeout=120)  # fmt: skip
    if init.returncode != 0:
        raise NoPostgres(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    opts = f"-p {port} -k {top} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = _pg_command(prefix, bindir, "pg_ctl", "-D", str(datadir), "-o", opts,
                        "-l", str(top / "log"), "-w", "-t", "60", "start", env=env, timeout=90)  # fmt: skip
    if start.returncode != 0:
        log = (top / "log").read_text(errors="replace") if (top / "log").exists() else start.stderr
        raise NoPostgres(f"pg_ctl start failed: {log.strip().splitlines()[-1:]}")
    return Server(DEFAULT_HOST, port, datadir=datadir, bindir=bindir, run_as=prefix)


def server(port: int = DEFAULT_PORT, binaries: str = BINARIES) -> Server:
    """The machine's server, or a throwaway one; NoPostgres (one line) when neither can be had."""
    if answers(DEFAULT_HOST, port):
        return Server(DEFAULT_HOST, port)
    bindir = find_bindir(binaries)
    if bindir is None:
        raise NoPostgres(INSTALL_HINT)
    return start_cluster(bindir)
