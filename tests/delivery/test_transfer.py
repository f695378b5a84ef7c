"""Transfers: part sizes, multipart ETags, bounded-memory file slices; downloads tied to the listed ETag."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from delivery.transfer import (
    MAX_PARTS,
    Download,
    FileSlice,
    Transfers,
    multipart_etag,
    part_size_for,
    plain_md5,
)
from savedmodel.storage import StorageError
from tests.delivery.conftest import MiB


def test_part_size_grows_to_stay_within_the_part_limit():
    assert part_size_for(1) == 8 * MiB
    assert part_size_for(10 * 1024 * MiB) == 8 * MiB
    huge = 200 * 1024 * MiB  # 200 GiB: 8 MiB parts would be 25600
    assert part_size_for(huge) % MiB == 0 and -(-huge // part_size_for(huge)) <= MAX_PARTS


def test_multipart_etag_is_the_md5_of_the_part_md5s():
    parts = [b"a" * 10, b"b" * 5]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-2"
    assert multipart_etag(md5s) == expected
    assert plain_md5(md5s[0]) and not plain_md5(expected) and not plain_md5(None)


def test_file_slice_reads_only_its_range(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(100)))
    with FileSlice(path, 10, 20) as body:
        assert len(body) == 20 and body.read(5) == bytes(range(10, 15)) and body.tell() == 5
        assert body.read() == bytes(range(15, 30)) and body.read() == b""
        body.seek(0)
        assert body.read(100) == bytes(range(10, 30))
        body.seek(-3, 2)
        assert body.read() == bytes(range(27, 30))


@pytest.mark.s3
def test_download_in_ranges_and_whole(store, client, s3_bucket, tmp_path):
    big = bytes(range(256)) * (4 * 4096 + 3)  # a little over 4 MiB: three 2 MiB ranges
    small = b"small object"
    client.put_object(Bucket=s3_bucket, Key="big", Body=big)
    client.put_object(Bucket=s3_bucket, Key="small", Body=small)
    heads = {k: client.head_object(Bucket=s3_bucket, Key=k)["ETag"].strip('"') for k in ("big", "small")}
    got = []
    with ThreadPoolExecutor(4) as pool:
        Transfers(store, s3_bucket, pool, got.append).download_files(
            [
                Download("big", len(big), heads["big"], tmp_path / "a" / "big"),
                Download("small", len(small), heads["small"], tmp_path / "small"),
            ],
            part_size=2 * MiB,
        )
    assert (tmp_path / "a" / "big").read_bytes() == big and (tmp_path / "small").read_bytes() == small
    assert sum(got) == len(big) + len(small)


@pytest.mark.s3
def test_an_object_replaced_since_the_listing_is_refused(store, client, s3_bucket, tmp_path):
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"first upload")
    listed = client.head_object(Bucket=s3_bucket, Key="k")["ETag"].strip('"')
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"second upload")
    with ThreadPoolExecutor(2) as pool, pytest.raises(StorageError) as refused:
        Transfers(store, s3_bucket, pool).download_files([Download("k", 12, listed, tmp_path / "k")])
    assert refused.value.kind == "precondition-failed"
