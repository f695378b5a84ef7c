"""Fixtures for the SavedModel checks: real models from tests/testdata/savedmodels uploaded to the real S3."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from savedmodel import S3Settings, SavedModelChecker

MODELS = Path(__file__).resolve().parents[1] / "testdata" / "savedmodels"
HALF_PLUS_TWO = MODELS / "saved_model_half_plus_two_cpu" / "00000123"


def model_files(version_dir: Path) -> dict[str, bytes]:
    """{relative path: content} of one version directory."""
    return {
        str(p.relative_to(version_dir)): p.read_bytes() for p in sorted(version_dir.rglob("*")) if p.is_file()
    }


@pytest.fixture()
def put(s3_server, s3_bucket) -> Callable[[dict[str, bytes]], None]:
    """Upload {key: bytes} into the test's bucket (in parallel for many keys)."""
    client = s3_server.client()

    def upload(objects: dict[str, bytes]) -> None:
        items = list(objects.items())
        if len(items) <= 8:
            for key, body in items:
                client.put_object(Bucket=s3_bucket, Key=key, Body=body)
            return
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda kv: client.put_object(Bucket=s3_bucket, Key=kv[0], Body=kv[1]), items))

    return upload


@pytest.fixture()
def put_version(put) -> Callable[..., None]:
    """put_version("model/00000123", files) uploads a version directory's files under that prefix."""

    def upload(prefix: str, files: dict[str, bytes]) -> None:
        put({f"{prefix}/{name}": body for name, body in files.items()})

    return upload


@pytest.fixture()
def settings(s3_server) -> S3Settings:
    return S3Settings.from_env(s3_server.env())


@pytest.fixture()
def checker(settings) -> SavedModelChecker:
    return SavedModelChecker(settings, connect_timeout=2.0, read_timeout=5.0, max_attempts=3)
