"""`watch` (sync without copying): the metrics flip while the version TF Serving would load is partial."""

from __future__ import annotations

import urllib.request

import pytest

from delivery.metrics import DeliveryMetrics, StatusServer
from delivery.sync import ModelSpec, ModelSync
from rulebook.names import ModelMetrics
from rulebook.policy import VersionPolicy
from tests.delivery.conftest import HALF_PLUS_TWO, upload_version, version_files

pytestmark = pytest.mark.s3

GOOD = version_files(HALF_PLUS_TWO)


def metric_values(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    values = {}
    for line in lines:
        if line.startswith("tfs_") and '{model="half_plus_two"}' in line:
            name, value = line.split('{model="half_plus_two"} ')
            values[name] = float(value)
    return values


def test_metrics_flip_when_a_partial_version_appears(store, client, s3_bucket):
    upload_version(client, s3_bucket, "m/00000123", GOOD)
    metrics = DeliveryMetrics(sync=False)
    watch = ModelSync(ModelSpec("half_plus_two", f"s3://{s3_bucket}/m", VersionPolicy("latest")), store)
    server = StatusServer(("127.0.0.1", 0), metrics, lambda: True, lambda: True).start()
    base = server.url
    try:
        metrics.update(watch.run_pass())
        first = metric_values(base)
        assert first[ModelMetrics.NEXT_LOAD_VALID] == 1 and first[ModelMetrics.INVALID_VERSIONS] == 0
        assert first[ModelMetrics.NEWEST_VERSION] == 123 and first[ModelMetrics.DESIRED_VERSIONS] == 1
        assert first[ModelMetrics.BYTES] > 0 and first[ModelMetrics.LAST_SUCCESS] > 0
        assert ModelMetrics.PRESENT_VERSIONS not in first  # nothing is copied

        upload_version(client, s3_bucket, "m/00000124", {"saved_model.pb": GOOD["saved_model.pb"]})
        state = watch.run_pass()
        metrics.update(state)
        partial = metric_values(base)
        assert partial[ModelMetrics.NEXT_LOAD_VALID] == 0 and partial[ModelMetrics.INVALID_VERSIONS] == 1
        assert partial[ModelMetrics.NEWEST_VERSION] == 124
        assert "variables/variables.index is missing" in state.reasons[124][0]

        upload_version(client, s3_bucket, "m/00000124", GOOD)
        metrics.update(watch.run_pass())
        assert metric_values(base)[ModelMetrics.NEXT_LOAD_VALID] == 1
    finally:
        server.stop()


def test_a_failed_pass_counts_an_error_and_keeps_the_last_picture(settings, s3_bucket, client):
    import dataclasses

    from delivery.transfer import transfer_store
    from devtools.s3server import free_port

    upload_version(client, s3_bucket, "m/1", GOOD)
    metrics = DeliveryMetrics(sync=False)
    spec = ModelSpec("half_plus_two", f"s3://{s3_bucket}/m", VersionPolicy("latest"))
    watch = ModelSync(spec, transfer_store(settings))
    metrics.update(watch.run_pass())
    watch.store = watch.checker.store = transfer_store(
        dataclasses.replace(settings, endpoint_url=f"http://127.0.0.1:{free_port()}"), max_attempts=1
    )
    state = watch.run_pass()
    metrics.update(state)
    assert not state.ok and state.error_kind == "unreachable" and state.next_load_valid
    text = metrics.render().decode()
    assert f'{ModelMetrics.ERRORS}{{kind="unreachable",model="half_plus_two"}} 1.0' in text
    assert f'{ModelMetrics.NEXT_LOAD_VALID}{{model="half_plus_two"}} 1.0' in text


def test_the_loop_takes_a_changed_model_list(store, client, s3_bucket):
    from delivery.sync import SyncLoop

    upload_version(client, s3_bucket, "a/1", GOOD)
    upload_version(client, s3_bucket, "b/2", GOOD)
    first = ModelSync(ModelSpec("a", f"s3://{s3_bucket}/a", VersionPolicy("latest")), store)
    second = ModelSync(ModelSpec("b", f"s3://{s3_bucket}/b", VersionPolicy("latest")), store)
    seen: list[str] = []
    lists = iter([None, [first, second]])

    def on_state(state) -> None:
        seen.append(state.model)
        if "b" in seen:
            loop.stop()

    loop = SyncLoop([first], interval=0.1, on_state=on_state, refresh=lambda: next(lists, None))
    loop.run()
    assert seen[0] == "a" and "b" in seen and loop.ready()
