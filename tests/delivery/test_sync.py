"""The sync sidecar against the real S3 server: what TF Serving's directory may show, and when."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from delivery.metrics import DeliveryMetrics, StatusServer
from delivery.sync import ModelSpec, ModelSync, SyncLoop
from devtools.dirwatch import DirWatch
from devtools.faultproxy import FaultProxy
from rulebook.policy import VersionPolicy, parse_version_name
from rulebook.sync import STAGING_PREFIX
from savedmodel import S3Settings, check_local_version
from savedmodel.storage import S3Store
from tests.delivery.conftest import HALF_PLUS_TWO, upload_version, version_files

pytestmark = pytest.mark.s3

GOOD = version_files(HALF_PLUS_TWO)
LATEST = VersionPolicy("latest")
BOUND = 60.0  # liveness bound, seconds: generous, never a speed assertion


def syncer(store, bucket, dest: Path, policy=LATEST, **kwargs) -> ModelSync:
    return ModelSync(ModelSpec("m", f"s3://{bucket}/m", policy, dest), store, jobs=4, **kwargs)


def local_versions(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if parse_version_name(p.name) is not None)


def eventually(condition, what: str, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:.0f} s: {what}")
        time.sleep(0.05)


def complete_versions_only(dest: Path):
    """The watcher's check: every directory TF Serving would take for a version is complete."""

    def check(_event_path: Path) -> None:
        for entry in list(dest.iterdir()):
            if parse_version_name(entry.name) is None:
                continue
            try:
                report = check_local_version(entry)
                files = {p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file()}
            except FileNotFoundError:
                continue  # removed (renamed away) between the listing and the check
            assert report.valid, f"{entry.name} is exposed incomplete: {report.reasons}"
            assert files == set(GOOD), f"{entry.name} is exposed with {sorted(files)}"

    return check


def test_once_places_the_selected_version(store, client, s3_bucket, tmp_path):
    upload_version(client, s3_bucket, "m/00000123", GOOD)
    upload_version(client, s3_bucket, "m/00000124", GOOD)
    dest = tmp_path / "models" / "m"
    state = syncer(store, s3_bucket, dest).run_pass()
    assert state.ok and state.ready and state.placed == (124,)
    assert (state.newest, state.desired, state.present, state.invalid) == (124, (124,), (124,), ())
    assert sorted(p.name for p in dest.iterdir()) == ["00000124"]  # no staging directory left
    assert version_files(dest / "00000124") == GOOD


def test_a_file_by_file_upload_is_never_exposed_incomplete(store, client, s3_bucket, tmp_path):
    upload_version(client, s3_bucket, "m/1", GOOD)
    dest = tmp_path / "m"
    dest.mkdir()
    loop = SyncLoop([syncer(store, s3_bucket, dest, prune_after=0.5)], interval=0.2)
    runner = threading.Thread(target=loop.run)
    with DirWatch(dest, complete_versions_only(dest)) as watch:
        runner.start()
        try:
            eventually(lambda: local_versions(dest) == ["1"], "version 1 in place")
            # the worst order: saved_model.pb first, the variables last, with sync passes in between
            order = [
                "saved_model.pb",
                "assets/foo.txt",
                "variables/variables.index",
                "variables/variables.data-00000-of-00001",
            ]
            upload_version(client, s3_bucket, "m/2", GOOD, order, between=lambda: time.sleep(0.5))
            eventually(lambda: local_versions(dest) == ["2"], "version 2 in place and version 1 pruned")
        finally:
            loop.stop()
            runner.join()
    assert watch.failures == []
    assert watch.events > 10  # the watcher saw the staging, the renames and the removal


def test_keeps_the_previous_version_while_the_newest_is_broken(store, client, s3_bucket, tmp_path):
    upload_version(client, s3_bucket, "m/1", GOOD)
    broken = {k: v for k, v in GOOD.items() if k != "variables/variables.index"}
    upload_version(client, s3_bucket, "m/2", broken)
    notes: list[str] = []
    sync = syncer(store, s3_bucket, tmp_path / "m", notify=lambda _m, text: notes.append(text))
    state = sync.run_pass()
    assert state.ok and state.ready
    assert (state.desired, state.invalid, state.target, state.present) == ((2,), (2,), (1,), (1,))
    assert state.next_load_valid  # what TF Serving loads from the directory is the checked version 1
    assert any(n.startswith("version 2 is invalid: variables/variables.index is missing") for n in notes)
    sync.run_pass()
    assert sum(n.startswith("version 2 is invalid") for n in notes) == 1  # said once, not every pass
    upload_version(client, s3_bucket, "m/2", {"variables/variables.index": GOOD["variables/variables.index"]})
    state = sync.run_pass()
    assert state.placed == (2,) and state.invalid == () and local_versions(tmp_path / "m") == ["1", "2"]


def test_prunes_what_the_policy_drops_after_the_grace_period(store, client, s3_bucket, tmp_path):
    now = [1000.0]
    for version in ("1", "2", "3"):
        upload_version(client, s3_bucket, f"m/{version}", GOOD)
    sync = syncer(
        store,
        s3_bucket,
        tmp_path / "m",
        VersionPolicy("latest", count=2),
        prune_after=30,
        clock=lambda: now[0],
    )
    assert sync.run_pass().present == (3, 2)
    upload_version(client, s3_bucket, "m/4", GOOD)
    state = sync.run_pass()
    assert state.placed == (4,) and state.present == (4, 3, 2)  # 2 stays: TF Serving may still serve it
    now[0] += 29
    assert sync.run_pass().present == (4, 3, 2)
    now[0] += 2
    state = sync.run_pass()
    assert state.removed == (2,) and state.present == (4, 3)
    assert local_versions(tmp_path / "m") == ["3", "4"]


def test_removes_staging_left_by_a_crash(store, client, s3_bucket, tmp_path):
    upload_version(client, s3_bucket, "m/1", GOOD)
    dest = tmp_path / "m"
    (dest / f"{STAGING_PREFIX}1-deadbeef" / "variables").mkdir(parents=True)
    syncer(store, s3_bucket, dest).run_pass()
    assert sorted(p.name for p in dest.iterdir()) == ["1"]


def test_keeps_serving_through_an_s3_outage(settings, client, s3_bucket, s3_server, tmp_path):
    upload_version(client, s3_bucket, "m/1", GOOD)
    dest = tmp_path / "m"
    with FaultProxy(s3_server.url) as proxy:
        store = S3Store(
            S3Settings(**{**settings.__dict__, "endpoint_url": proxy.url}),
            connect_timeout=1,
            read_timeout=2,
            max_attempts=2,
        )
        metrics = DeliveryMetrics(sync=True)
        sync = syncer(store, s3_bucket, dest, on_bytes=metrics.count_bytes)
        loop = SyncLoop([sync], interval=0.2, on_state=metrics.update, max_backoff=1.0)
        server = StatusServer(("127.0.0.1", 0), metrics, loop.ready, lambda: True).start()
        base = server.url
        runner = threading.Thread(target=loop.run)
        runner.start()
        try:
            eventually(lambda: status(f"{base}/readyz") == 200, "ready with version 1")
            proxy.set_fault("reset")  # S3 gone: every connection dropped
            eventually(lambda: sync.last is not None and not sync.last.ok, "a failed pass")
            eventually(
                lambda: 'tfs_sync_errors_total{kind="connection-reset",model="m"}' in text(base),
                "the error counted",
            )
            assert status(f"{base}/readyz") == 200 and local_versions(dest) == ["1"]
            upload_version(client, s3_bucket, "m/2", GOOD)  # behind the sidecar's back, directly
            proxy.set_fault(None)
            eventually(lambda: local_versions(dest) == ["2"], "version 2 after the outage")
        finally:
            loop.stop()
            runner.join()
            server.stop()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def text(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        return response.read().decode()
