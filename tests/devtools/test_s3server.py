"""The embedded SeaweedFS takes as many buckets on any machine: its capacity does not follow free disk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from devtools.s3server import VOLUME_SLOTS, SeaweedFS

# The suite creates about 100 buckets (one per S3 test, a few more for the served webhook); each takes one
# volume slot. Three times that, each with an object written (the write is what allocates the volume).
BUCKETS = 300


def test_more_buckets_than_the_suite_creates_each_take_a_write():
    assert BUCKETS < VOLUME_SLOTS
    with SeaweedFS() as endpoint:
        client = endpoint.client()

        def create(index: int) -> None:
            name = f"capacity-{index:04d}"
            client.create_bucket(Bucket=name)
            client.put_object(Bucket=name, Key="model/1/saved_model.pb", Body=b"x")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(BUCKETS)))
        names = {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
        assert {f"capacity-{index:04d}" for index in range(BUCKETS)} <= names
