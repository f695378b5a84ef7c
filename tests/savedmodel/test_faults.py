"""Cannot-verify paths: a fault proxy in front of the real S3 server. Storage trouble is never "missing"."""

from __future__ import annotations

import time

import pytest

from devtools.faultproxy import FaultProxy
from devtools.s3server import free_port
from savedmodel import S3Settings, SavedModelChecker, Verdict, VersionPolicy
from tests.savedmodel.conftest import HALF_PLUS_TWO, model_files

pytestmark = pytest.mark.s3

LATEST = VersionPolicy("latest")


@pytest.fixture()
def model(s3_bucket, put_version) -> str:
    put_version("model/00000123", model_files(HALF_PLUS_TWO))
    return f"s3://{s3_bucket}/model"


@pytest.fixture()
def proxy(s3_server):
    with FaultProxy(s3_server.url) as running:
        yield running


def checker_for(settings: S3Settings, url: str, **kwargs) -> SavedModelChecker:
    options = {"connect_timeout": 1.0, "read_timeout": 2.0, "max_attempts": 3, **kwargs}
    return SavedModelChecker(S3Settings(**{**settings.__dict__, "endpoint_url": url}), **options)


def test_through_the_proxy_without_faults(settings, proxy, model):
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.VALID
    assert len(proxy.requests) == report.stats.requests == 3


def test_unreachable_endpoint(settings, model):
    report = checker_for(settings, f"http://127.0.0.1:{free_port()}").verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "unreachable"
    assert "is unreachable" in report.error and "gave up after 3 attempts" in report.error
    assert report.versions == () and report.problems == ()


def test_access_denied_is_not_missing_and_not_retried(settings, proxy, model):
    proxy.set_fault("403")
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "access-denied"
    assert "access denied" in report.error
    assert len(proxy.requests) == 1


def test_access_denied_on_the_saved_model_read(settings, proxy, model):
    proxy.set_fault("403", match="saved_model.pb")  # S3 answers 403 for a key it will not show
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "access-denied"
    assert "saved_model.pb" in report.error


def test_slowdown_past_the_retry_budget(settings, proxy, model):
    proxy.set_fault("slowdown")
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "throttled"
    assert "SlowDown" in report.error and "gave up after 3 attempts" in report.error
    assert len(proxy.requests) == 3


def test_slowdown_within_the_retry_budget_is_absorbed(settings, proxy, model):
    proxy.set_fault("slowdown", times=2)
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.VALID
    assert report.stats.requests == 5


def test_server_errors_on_the_version_listing(settings, proxy, model):
    proxy.set_fault("500", match="00000123")
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "server-error"


@pytest.mark.parametrize("times", [None, 1])
def test_connection_reset(settings, proxy, model, times):
    proxy.set_fault("reset", times=times)
    report = checker_for(settings, proxy.url).verify(model, LATEST)
    if times is None:
        assert report.verdict is Verdict.CANNOT_VERIFY
        assert report.error_kind == "connection-reset"
    else:
        assert report.verdict is Verdict.VALID


def test_deadline_bounds_a_slow_server(settings, proxy, model):
    proxy.set_fault("delay", seconds=5.0)
    report = checker_for(settings, proxy.url).verify(model, LATEST, deadline=time.monotonic() + 0.5)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "timed-out"
    assert report.error.startswith("timed out after ")


def test_read_timeout_without_a_deadline(settings, proxy, model):
    proxy.set_fault("delay", seconds=5.0)
    report = checker_for(settings, proxy.url, read_timeout=0.3, max_attempts=2).verify(model, LATEST)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "timed-out"
    assert len(proxy.requests) == 2


def test_a_spent_deadline_sends_nothing():
    settings = S3Settings("http://127.0.0.1:9", access_key="a", secret_key="b")
    report = SavedModelChecker(settings).verify("s3://bucket/model", LATEST, deadline=time.monotonic() - 1)
    assert report.verdict is Verdict.CANNOT_VERIFY
    assert report.error_kind == "timed-out"
    assert report.stats.requests == 0
