"""`mediawatch serve`: the read-only web app (crawler/web/) on 127.0.0.1 by default.

Bound beyond loopback it refuses to start without a token: the archive is the user's
monitoring work, and a page of it is one request away from anyone on the network.
"""

from __future__ import annotations

import os
import socket

import click

from archive.db import ArchiveError
from crawler.options import db_option, fail


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port (0: any free port, printed at start).",
)
@click.option(
    "--token",
    envvar="MEDIAWATCH_SERVE_TOKEN",
    default=None,
    help="Required from every client (?token= once, or Authorization: Bearer). "
    "Env: MEDIAWATCH_SERVE_TOKEN.",
)
@click.option(
    "--query-timeout",
    type=click.FloatRange(0.1, 3600),
    default=20.0,
    show_default=True,
    help="Seconds a page may hold the archive open; a longer query is stopped (the daemon "
    "cannot write meanwhile).",
)
@db_option
def serve_cmd(host: str, port: int, token: str | None, query_timeout: float, db_path: str) -> None:
    """Browse the archive in a web browser: latest articles, search, articles, outlets,
    trends, SQL. Read-only; works while the daemon runs.

    \b
    Examples:
      mediawatch serve                      # then open http://127.0.0.1:8765/
      mediawatch serve --port 9000 --db data/archive.duckdb
      MEDIAWATCH_SERVE_TOKEN=s3cret mediawatch serve --host 0.0.0.0
    """
    from archive.db import connect_read
    from archive.target import hide_password, is_lake
    from crawler.web.app import create_app, is_loopback

    if not is_loopback(host) and not token:
        fail(
            f"--host {host} is reachable beyond this machine: give --token (or MEDIAWATCH_SERVE_TOKEN)"
        )
    if token is not None and len(token) < 8:
        fail("--token: use at least 8 characters")
    try:  # a missing, unreachable or foreign-locked archive: say so now
        if is_lake(db_path):
            from archive.query import open_archive

            open_archive(db_path, fts=False).close()
        else:
            connect_read(db_path, retries=30).close()
    except ArchiveError as exc:
        fail(str(exc))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    sock.listen(128)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    shown_db = hide_password(db_path) if is_lake(db_path) else os.path.abspath(db_path)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    click.echo(
        f"mediawatch serve: http://{shown}:{bound}/ (archive {shown_db}, read-only); Ctrl-C stops",
        err=True,
    )
    import uvicorn

    config = uvicorn.Config(
        create_app(db_path, token=token, timeout=query_timeout),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run(sockets=[sock])


def register(group: click.Group) -> None:
    group.add_command(serve_cmd)
