from __future__ import annotations

import pytest

from rulebook.s3 import S3Path, tfserving_env, workload_endpoint


@pytest.mark.parametrize(
    ("base_path", "why"),
    [
        ("s3://mödels/m", "is not a valid S3 bucket name"),
        ("s3://My_Bucket/m", "is not a valid S3 bucket name"),
        ("s3://b/m", "is not a valid S3 bucket name"),
        ("s3://192.168.1.1/m", "must not look like an IP address"),
        ("s3://models/a//b", "contains an empty path segment"),
        ("https://models/m", "must look like s3://bucket/prefix"),
    ],
)
def test_paths_tf_serving_could_never_read_are_refused_before_any_request(base_path, why):
    with pytest.raises(ValueError, match=why):
        S3Path.parse(base_path)


def test_a_base_path_and_its_children():
    path = S3Path.parse("s3://models/tfserving/half_plus_two/")
    assert (path.bucket, path.prefix, str(path)) == (
        "models",
        "tfserving/half_plus_two",
        "s3://models/tfserving/half_plus_two",
    )
    assert path.child("00000123") == "tfserving/half_plus_two/00000123"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"S3_ENDPOINT": "rgw:7480", "S3_USE_HTTPS": "0"}, "http://rgw:7480"),
        ({"S3_ENDPOINT": "rgw:7480"}, "https://rgw:7480"),
        ({"S3_ENDPOINT": "rgw:7480", "S3_USE_HTTPS": "false"}, "https://rgw:7480"),  # TF reads only the '0'
        ({"S3_ENDPOINT": "rgw:7480", "S3_USE_HTTPS": "00"}, "http://rgw:7480"),
        ({"S3_ENDPOINT": "http://rgw:7480"}, "http://rgw:7480"),
        ({}, None),
    ],
)
def test_the_endpoint_tf_servings_s3_filesystem_uses(env, url):
    assert workload_endpoint(env) == url


def test_what_the_generator_writes_reads_back_as_the_same_endpoint():
    for url in ("http://rgw.storage.svc:7480", "https://s3.eu-west-1.amazonaws.com"):
        assert workload_endpoint(tfserving_env(url)) == url
