"""A lake whose data lives on an S3-compatible server (moto's, on 127.0.0.1): an archive moved
in, read, searched and compacted through the CLI, its Parquet files in the bucket and none on
the local disk; without credentials, one line saying which variables to set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests import pg
from tests.conftest import run_cli
from tests.test_query import build_archive

BUCKET = "newsroom"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "mediawatch",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


def bucket_keys(endpoint: str) -> list[str]:
    env = aws_env(endpoint)
    s3: Any = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_a_lake_on_s3_holds_reads_searches_and_compacts(
    s3_endpoint: str, pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    assert bucket_keys(s3_endpoint) == []
    db = build_archive(tmp_path / "archive.duckdb")
    url = pg_server.url(pg_database, f"s3://{BUCKET}/lake/")
    env = aws_env(s3_endpoint)

    moved = run_cli("migrate", "--from", str(db), "--to", url, env=env)
    assert moved.returncode == 0, moved.stderr
    count = "SELECT count(*) AS n, count(DISTINCT outlet) AS outlets FROM articles"
    on_file = run_cli("query", count, "--db", str(db), "--format", "json", env=env)
    on_s3 = run_cli("query", count, "--db", url, "--format", "json", env=env)
    assert on_s3.returncode == 0, on_s3.stderr
    assert json.loads(on_s3.stdout) == json.loads(on_file.stdout) == [{"n": 6, "outlets": 4}]

    assert run_cli("reindex", "--db", url, env=env).returncode == 0
    found = run_cli("search", "wahlen", "--db", url, "--format", "json", env=env)
    assert [h["outlet"] for h in json.loads(found.stdout)] == ["spiegel"], found.stderr

    compacted = run_cli("compact", "--db", url, "--keep", "1s", "--grace", "1s", env=env)
    assert compacted.returncode == 0 and compacted.stdout.startswith("data files"), (
        compacted.stdout + compacted.stderr
    )
    keys = bucket_keys(s3_endpoint)  # small commits are inlined in the catalog: flushed now
    assert keys and all(k.startswith("lake/") and k.endswith(".parquet") for k in keys), keys
    assert not any(p.suffix == ".parquet" for p in tmp_path.rglob("*")), "no data on local disk"
    again = run_cli("query", count, "--db", url, "--format", "json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == [{"n": 6, "outlets": 4}]


def test_an_s3_lake_without_credentials_is_one_line(
    s3_endpoint: str, pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}  # empty is unset
    url = pg_server.url(pg_database, f"s3://{BUCKET}/other/")
    db = build_archive(tmp_path / "archive.duckdb")
    result = run_cli("migrate", "--from", str(db), "--to", url, env=env)
    assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in result.stderr
