"""Delivery fixtures: real models from tests/testdata/savedmodels, a transfer store on the session's S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from delivery.transfer import transfer_store
from devtools.synthetic import sharded_model
from savedmodel import S3Settings

MODELS = Path(__file__).resolve().parents[1] / "testdata" / "savedmodels"
HALF_PLUS_TWO = MODELS / "saved_model_half_plus_two_cpu" / "00000123"
MiB = 1024 * 1024


def version_files(version_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(version_dir).as_posix(): p.read_bytes()
        for p in sorted(version_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def settings(s3_server) -> S3Settings:
    return S3Settings.from_env(s3_server.env())


@pytest.fixture()
def store(settings):
    return transfer_store(settings, jobs=4)


@pytest.fixture()
def client(s3_server):
    return s3_server.client()


@pytest.fixture()
def sharded(tmp_path) -> Path:
    """half_plus_two with 3 variable shards of 3 MiB each (multipart with the tests' 5 MiB parts? no: one
    part each; `big_sharded` crosses the part size)."""
    return sharded_model(HALF_PLUS_TWO, tmp_path / "sharded" / "00000001", shards=3, shard_bytes=3 * MiB)


@pytest.fixture()
def big_sharded(tmp_path) -> Path:
    """Two 11 MiB shards: multipart uploads with 5 MiB parts, ranged downloads with 5 MiB ranges."""
    return sharded_model(HALF_PLUS_TWO, tmp_path / "big" / "00000001", shards=2, shard_bytes=11 * MiB, seed=1)


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return sorted(found)


def upload_version(
    client, bucket: str, prefix: str, files: dict[str, bytes], order: list[str] | None = None, between=None
) -> None:
    """Upload a version file by file (as s3cmd/rclone would), `between()` called after each file."""
    for name in order or sorted(files):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=files[name])
        if between is not None:
            between()


def children(client, bucket: str, prefix: str) -> list[str]:
    """What TF Serving's S3 listing sees under a base path: common prefixes and objects."""
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    found = [p["Prefix"] for p in listing.get("CommonPrefixes", [])]
    found += [o["Key"] for o in listing.get("Contents", [])]
    return sorted(name for name in found if name != prefix)  # SeaweedFS lists an emptied base path itself
