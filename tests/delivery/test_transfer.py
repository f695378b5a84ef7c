"""Transfers: part sizes, multipart ETags, bounded-memory file slices; uploads completed on request;
downloads tied to the listed ETag."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from delivery.transfer import (
    MAX_PARTS,
    Download,
    FileSlice,
    Transfers,
    md5_of_whole,
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


def test_which_etags_give_the_md5_of_the_whole_object():
    body = b"saved_model.pb bytes"
    digest = hashlib.md5(body).digest()
    assert md5_of_whole(hashlib.md5(body).hexdigest())(digest)
    assert md5_of_whole(multipart_etag([hashlib.md5(body).hexdigest()]))(digest)  # one part: "<md5>-1"
    assert not md5_of_whole(multipart_etag([hashlib.md5(b"other").hexdigest()]))(digest)
    assert md5_of_whole(multipart_etag(["0" * 32, "1" * 32])) is None  # two parts: not without part size
    assert md5_of_whole(None) is None and md5_of_whole("not-an-md5") is None


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


@pytest.mark.s3
def test_uploads_show_nothing_until_completed_and_are_checked(store, client, s3_bucket, tmp_path):
    big, small = tmp_path / "big", tmp_path / "small"
    big.write_bytes(bytes(range(256)) * (4 * 4096 * 3))  # 12 MiB: three 5 MiB parts, the last 2 MiB
    small.write_bytes(b"small object")
    sent = []
    with ThreadPoolExecutor(4) as pool:
        transfers = Transfers(store, s3_bucket, pool, sent.append)
        uploads = transfers.begin_uploads([(big, "m/1/big"), (small, "m/1/small")], part_size=5 * MiB)
        transfers.send_parts([big, small], uploads)
        assert [u.parts for u in uploads] == [3, 1] and sum(sent) == 12 * MiB + 12
        assert client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []
        etags = [transfers.complete(u) for u in uploads]
        assert etags == [multipart_etag(u.part_etags()) for u in uploads]
        # The downloads check the one-part object's MD5 from its "<md5>-1" ETag as it streams.
        pairs = zip(uploads, etags, strict=True)
        got = [Download(u.key, u.size, e, tmp_path / "got" / u.key) for u, e in pairs]
        transfers.download_files(got, part_size=5 * MiB)
    assert (tmp_path / "got" / "m/1/big").read_bytes() == big.read_bytes()
    assert (tmp_path / "got" / "m/1/small").read_bytes() == b"small object"
