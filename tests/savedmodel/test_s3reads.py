"""The direct reads (s3reads) against the real S3 server: they answer what boto3 answers (keys that need
encoding, pagination, byte ranges), fail as boto3 fails, and take keys from the provider chain; AWS S3
itself keeps the boto3 client."""

from __future__ import annotations

import dataclasses

import pytest

from savedmodel import S3Settings, S3Store
from savedmodel.trees import NoSuchBucket, NoSuchKey, StorageError

KEYS = [
    "m/1/saved_model.pb",
    "m/1/variables/variables.index",
    "m/1/with space+plus%percent&amp=eq?q.txt",
    "m/1/ünïcödé/ключ.bin",
    "m/1/tilde~star*paren(1)",
    "m/2/",  # a folder marker
    "m/top-level-object",
]


def _boto_page(page: dict) -> dict:
    return {
        "CommonPrefixes": [c["Prefix"] for c in page.get("CommonPrefixes", [])],
        "Contents": [(c["Key"], c["Size"], c.get("ETag")) for c in page.get("Contents", [])],
        "IsTruncated": page.get("IsTruncated"),
        "more": bool(page.get("NextContinuationToken")),
    }


@pytest.fixture()
def stored(s3_server, s3_bucket, put) -> dict[str, bytes]:
    objects = {
        key: (b"" if key.endswith("/") else f"body of {key} ".encode() * (3 + i))
        for i, key in enumerate(KEYS)
    }
    put(objects)
    return objects


@pytest.mark.s3
@pytest.mark.parametrize(
    ("prefix", "delimiter", "page_size"), [("m/", "/", 1000), ("m/1/", None, 1000), ("m/1/", None, 2)]
)
def test_pages_are_what_boto3_lists(s3_server, s3_bucket, settings, stored, prefix, delimiter, page_size):
    store = S3Store(settings)
    assert store._pair(1.0, 1.0)[1] is not None
    client = s3_server.client()
    token = None
    while True:
        mine = store.list_page(
            s3_bucket, prefix, delimiter=delimiter, token=token, max_keys=page_size, deadline=None
        )
        kwargs = {"Bucket": s3_bucket, "Prefix": prefix, "MaxKeys": page_size}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        theirs = client.list_objects_v2(**kwargs)
        assert _boto_page(mine) == _boto_page(theirs)
        token = mine.get("NextContinuationToken")
        if not mine["IsTruncated"]:
            break


@pytest.mark.s3
def test_ranges_are_the_bytes_stored(s3_bucket, settings, stored):
    store = S3Store(settings)
    for key, body in stored.items():
        if body:
            assert store.get_range(s3_bucket, key, 0, len(body), deadline=None) == body
            assert store.get_range(s3_bucket, key, 3, 11, deadline=None) == body[3:11]
            assert store.get_range(s3_bucket, key, 5, len(body) + 100, deadline=None) == body[5:]


@pytest.mark.s3
def test_failures_are_classified_as_with_boto3(s3_bucket, settings, stored):
    store = S3Store(settings)
    with pytest.raises(NoSuchBucket):
        store.list_page("no-such-bucket-here", "m/", delimiter="/", token=None, max_keys=10, deadline=None)
    with pytest.raises(NoSuchKey):
        store.get_range(s3_bucket, "m/1/absent", 0, 10, deadline=None)
    wrong = S3Store(dataclasses.replace(settings, secret_key="not-the-secret"), max_attempts=1)
    with pytest.raises(StorageError) as denied:
        wrong.list_page(s3_bucket, "m/", delimiter="/", token=None, max_keys=10, deadline=None)
    assert denied.value.kind == "access-denied"


@pytest.mark.s3
def test_keys_from_the_provider_chain(s3_server, s3_bucket, stored, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    store = S3Store(S3Settings(s3_server.url, s3_server.region))
    assert store._pair(1.0, 1.0)[1] is not None
    assert store.get_range(s3_bucket, "m/1/saved_model.pb", 0, 4, deadline=None) == b"body"


def test_aws_s3_itself_keeps_the_boto3_client():
    store = S3Store(S3Settings(None, "eu-west-1", access_key="AK", secret_key="SK"))
    assert store._pair(1.0, 1.0)[1] is None
