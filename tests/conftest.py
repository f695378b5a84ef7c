"""Session-wide fixtures: one real S3 server per test session.

By default the session starts SeaweedFS (`weed mini`) on free loopback ports. When TFS_TEST_S3_URL is set
(scripts/rgw.sh sets it for the Ceph RGW integration pass) the same tests run against that server instead.
"""

from __future__ import annotations

import itertools
import os
import uuid

import pytest

from devtools.s3server import S3Endpoint, SeaweedFS, from_environment

_bucket_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> S3Endpoint:
    external = from_environment()
    if external is not None:
        yield external
        return
    server = SeaweedFS()
    endpoint = server.start()
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture()
def s3_bucket(s3_server: S3Endpoint) -> str:
    """A fresh, empty bucket for one test (valid S3 name, unique in the session)."""
    name = f"t{next(_bucket_counter):04d}-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture()
def s3_env(s3_server: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The TF Serving S3 environment pointing at the session server, applied to os.environ."""
    env = s3_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "S3_REGION"):
        monkeypatch.delenv(key, raising=False)
    return env


def pytest_report_header(config) -> str:
    if not os.environ.get("TFS_TEST_S3_URL"):
        return "S3 backend: seaweedfs"
    return f"S3 backend: {os.environ.get('TFS_TEST_S3_BACKEND', 'external')}"
