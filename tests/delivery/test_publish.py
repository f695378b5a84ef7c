"""`Publisher` against the real S3 server: multipart uploads completed with saved_model.pb last, checks,
rollback, refusals."""

from __future__ import annotations

import shutil
import threading

import pytest

from delivery.publish import Publisher, PublishFailed, PublishRefused, choose_version
from devtools.faultproxy import FaultProxy
from savedmodel import S3Settings, SavedModelChecker, Verdict, VersionPolicy
from savedmodel.storage import S3Store
from tests.delivery.conftest import HALF_PLUS_TWO, MiB, children, keys, version_files

pytestmark = pytest.mark.s3


def publisher(store, **kwargs) -> Publisher:
    return Publisher(store, jobs=4, part_size=5 * MiB, **kwargs)


def test_publish_half_plus_two_then_the_next_version(store, client, s3_bucket):
    messages = []
    pub = publisher(store, notify=messages.append)
    first = pub.publish(pub.plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m"))
    assert first.plan.name == "1" and first.report.verdict is Verdict.VALID
    second = pub.publish(pub.plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m"))
    assert second.plan.name == "2"
    assert keys(client, s3_bucket) == sorted(
        f"m/{v}/{name}" for v in ("1", "2") for name in version_files(HALF_PLUS_TWO)
    )
    assert children(client, s3_bucket, "m/") == ["m/1/", "m/2/"]  # nothing else, ever (no staging)
    body = client.get_object(Bucket=s3_bucket, Key="m/2/saved_model.pb")["Body"].read()
    assert body == (HALF_PLUS_TWO / "saved_model.pb").read_bytes()
    assert any("saved_model.pb last" in m for m in messages)


def test_next_version_is_zero_padded_like_the_existing_ones(store, client, s3_bucket):
    for name, body in version_files(HALF_PLUS_TWO).items():
        client.put_object(Bucket=s3_bucket, Key=f"m/00000123/{name}", Body=body)
    pub = publisher(store)
    plan = pub.plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m")
    assert (plan.number, plan.name, plan.existing) == (124, "00000124", ("00000123",))
    pub.publish(plan)
    report = SavedModelChecker(store.settings).verify(f"s3://{s3_bucket}/m", VersionPolicy("all"))
    assert [v.name for v in report.versions] == ["00000124", "00000123"] and report.ok


def test_choose_version():
    assert choose_version({}, None) == (1, "1")
    assert choose_version({123: ("00000123",)}, None) == (124, "00000124")
    assert choose_version({7: ("7",), 9: ("9",)}, None) == (10, "10")
    assert choose_version({123: ("00000123",)}, 5) == (5, "00000005")
    assert choose_version({1: ("1",)}, 99999) == (99999, "99999")


def test_multi_shard_model_with_multipart_uploads(store, client, s3_bucket, big_sharded):
    pub = publisher(store)
    result = pub.publish(pub.plan(big_sharded, f"s3://{s3_bucket}/m", version=7))
    assert result.report.verdict is Verdict.VALID
    head = client.head_object(Bucket=s3_bucket, Key="m/7/variables/variables.data-00001-of-00002")
    assert head["ContentLength"] == 11 * MiB
    assert head["ETag"].strip('"').endswith("-3")  # uploaded in three 5 MiB parts
    got = client.get_object(Bucket=s3_bucket, Key="m/7/variables/variables.data-00000-of-00002")[
        "Body"
    ].read()
    assert got == (big_sharded / "variables" / "variables.data-00000-of-00002").read_bytes()


def test_a_reader_never_sees_saved_model_pb_beside_a_missing_file(store, client, s3_bucket, sharded):
    expected = set(version_files(sharded))
    seen: list[set[str]] = []
    base_listings: list[list[str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            names = {k[len("m/1/") :] for k in keys(client, s3_bucket, "m/1/")}
            if names:
                seen.append(names)
            base_listings.append(children(client, s3_bucket, "m/"))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        pub = publisher(store)
        pub.publish(pub.plan(sharded, f"s3://{s3_bucket}/m"))
    finally:
        done.set()
        reader.join()
    seen.append({k[len("m/1/") :] for k in keys(client, s3_bucket, "m/1/")})
    assert seen[-1] == expected
    for names in seen:
        assert "saved_model.pb" not in names or names == expected, names
    # Nothing but the version ever shows under the base path: no staging prefix, no multipart-upload store
    # (SeaweedFS keeps it in the bucket's .uploads/ folder).
    assert all(listing in ([], ["m/1/"]) for listing in base_listings), set(map(tuple, base_listings))
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_refuses_to_overwrite_and_writes_nothing(store, client, s3_bucket):
    pub = publisher(store)
    pub.publish(pub.plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m", version=123))
    before = keys(client, s3_bucket)
    with pytest.raises(PublishRefused) as refused:
        pub.plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m", version=123)
    assert refused.value.reasons == [
        f"version 123 already exists (s3://{s3_bucket}/m/123/); versions are never overwritten"
    ]
    assert keys(client, s3_bucket) == before


def test_refuses_an_invalid_model_saying_why_and_writes_nothing(store, client, s3_bucket, tmp_path):
    partial = tmp_path / "00000124"
    shutil.copytree(HALF_PLUS_TWO, partial)
    (partial / "variables" / "variables.index").unlink()
    with pytest.raises(PublishRefused) as refused:
        publisher(store).plan(partial, f"s3://{s3_bucket}/m")
    assert refused.value.reasons == [
        f"{partial}: variables/variables.index is missing: the variables cannot be restored "
        "(a partial upload?)"
    ]
    assert keys(client, s3_bucket) == []


def test_refuses_a_base_path_given_as_local_dir(store, s3_bucket):
    with pytest.raises(PublishRefused, match="holds version directories .*00000123.*pass one version"):
        publisher(store).plan(HALF_PLUS_TWO.parent, f"s3://{s3_bucket}/m")


def fault_store(settings, proxy) -> S3Store:
    return S3Store(
        S3Settings(**{**settings.__dict__, "endpoint_url": proxy.url}), max_attempts=2, max_connections=6
    )


def completion_requests(proxy) -> list[str]:
    """Targets of the CompleteMultipartUpload requests that went through the proxy."""
    return [target for method, target in proxy.requests if method == "POST" and "?uploadId=" in target]


def test_failure_while_completing_leaves_no_numbered_directory(
    settings, client, s3_bucket, s3_server, sharded
):
    with FaultProxy(s3_server.url) as proxy:
        # Only the completion (POST ...?uploadId=) of this file fails, both attempts: saved_model.pb is
        # never completed, the other files that were are removed again.
        proxy.set_fault(
            "500", match="/m/1/variables/variables.data-00002-of-00003?uploadId=", method="POST", times=2
        )
        pub = publisher(fault_store(settings, proxy))
        with pytest.raises(PublishFailed) as failed:
            pub.publish(pub.plan(sharded, f"s3://{s3_bucket}/m"))
        completions = completion_requests(proxy)
        copies = [target for method, target in proxy.requests if method == "PUT" and "/m/1/" in target]
    assert failed.value.kind == "server-error" and failed.value.leftovers == ()
    assert "variables.data-00002-of-00003" in failed.value.message
    assert not any("/m/1/saved_model.pb?" in t for t in completions)
    assert not any(t.endswith("/m/1/saved_model.pb") for t in copies)
    assert keys(client, s3_bucket) == []  # no m/1/
    assert children(client, s3_bucket, "m/") == []  # not even as empty directories (SeaweedFS keeps them)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []  # all aborted


def test_failure_after_saved_model_pb_landed_removes_it_first(
    settings, client, s3_bucket, s3_server, sharded
):
    expected = set(version_files(sharded))
    seen: list[set[str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append({k[len("m/1/") :] for k in keys(client, s3_bucket, "m/1/")})

    with FaultProxy(s3_server.url) as proxy:
        # saved_model.pb's completion goes through (every other file is complete by then); the HEAD that
        # checks it fails: the whole version must go again, saved_model.pb first.
        proxy.set_fault("500", match="/m/1/saved_model.pb", method="HEAD", times=2)
        pub = publisher(fault_store(settings, proxy))
        reader = threading.Thread(target=poll)
        reader.start()
        try:
            with pytest.raises(PublishFailed) as failed:
                pub.publish(pub.plan(sharded, f"s3://{s3_bucket}/m"))
        finally:
            done.set()
            reader.join()
        completions = completion_requests(proxy)
    assert failed.value.kind == "server-error" and failed.value.leftovers == ()
    assert len(completions) == len(expected) and completions[-1].split("?")[0].endswith("/m/1/saved_model.pb")
    for names in seen:
        assert "saved_model.pb" not in names or names == expected, names
    assert keys(client, s3_bucket) == [] and children(client, s3_bucket, "m/") == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_failure_while_sending_parts_shows_nothing_and_aborts_every_upload(
    settings, client, s3_bucket, s3_server, big_sharded
):
    with FaultProxy(s3_server.url) as proxy:
        proxy.set_fault("500", match="/m/1/variables/variables.data-00001-of-00002?uploadId=", method="PUT")
        pub = publisher(fault_store(settings, proxy))
        with pytest.raises(PublishFailed) as failed:
            pub.publish(pub.plan(big_sharded, f"s3://{s3_bucket}/m"))
        completions = completion_requests(proxy)
    assert failed.value.kind == "server-error" and failed.value.leftovers == ()
    assert "upload part" in failed.value.message and "variables.data-00001-of-00002" in failed.value.message
    assert completions == []
    assert keys(client, s3_bucket) == [] and children(client, s3_bucket, "m/") == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_file_changed_since_the_check_fails_and_writes_nothing(store, client, s3_bucket, sharded):
    pub = publisher(store)
    plan = pub.plan(sharded, f"s3://{s3_bucket}/m")
    with open(sharded / "variables" / "variables.index", "ab") as index:
        index.write(b"appended after the check")
    with pytest.raises(PublishFailed) as failed:
        pub.publish(plan)
    assert failed.value.kind == "mismatch"
    assert "variables.index changed since it was checked" in failed.value.message
    assert keys(client, s3_bucket) == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_dry_run_plans_without_writing(store, client, s3_bucket):
    plan = publisher(store).plan(HALF_PLUS_TWO, f"s3://{s3_bucket}/m")
    assert plan.version_url == f"s3://{s3_bucket}/m/1/"
    assert [f.path for f in plan.completion_order()][-1] == "saved_model.pb"
    assert plan.bytes == sum(len(b) for b in version_files(HALF_PLUS_TWO).values())
    assert keys(client, s3_bucket) == []
