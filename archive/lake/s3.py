"""A lake whose Parquet files are on S3 or an S3-compatible server (MinIO, Ceph, moto): the
credentials and endpoint come from the variables every AWS tool reads, handed to DuckDB's
httpfs as a secret of this connection only (never written anywhere)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import duckdb

from archive.db import ArchiveError
from archive.lake.extensions import load_extension
from archive.target import LakeTarget


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def s3_secret_sql(env: dict[str, str]) -> str:
    """CREATE SECRET for httpfs from AWS_* variables; ArchiveError naming what is missing."""
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise ArchiveError(
            "an s3:// lake needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
            "AWS_ENDPOINT_URL for a server other than AWS) in the environment"
        )
    options = {
        "KEY_ID": _literal(key),
        "SECRET": _literal(secret),
        "REGION": _literal(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"),
    }
    if env.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = _literal(env["AWS_SESSION_TOKEN"])
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if not parts.netloc:
            raise ArchiveError(f"AWS_ENDPOINT_URL={endpoint!r}: expected http(s)://HOST[:PORT]")
        options |= {
            "ENDPOINT": _literal(parts.netloc),
            "USE_SSL": "true" if parts.scheme == "https" else "false",
            "URL_STYLE": "'path'",  # S3-compatible servers answer path-style requests
        }
    return (
        "CREATE OR REPLACE TEMPORARY SECRET mediawatch_s3 (TYPE s3, "
        + ", ".join(f"{name} {value}" for name, value in options.items())
        + ")"
    )


def configure_s3(con: duckdb.DuckDBPyConnection, target: LakeTarget) -> None:
    """httpfs and the credentials, before the lake is attached, when its data is on S3."""
    if not target.data.startswith("s3://"):
        return
    load_extension(con, "httpfs")
    con.execute(s3_secret_sql(dict(os.environ)))
