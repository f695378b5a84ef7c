from concurrent.futures import ThreadPoolExecutor

import pytest

from savedmodel import S3Settings, Verdict, VersionPolicy
from tests.savedmodel.conftest import HALF_PLUS_TWO, model_files


def test_settings_read_tf_servings_environment():
    env = {
        "S3_ENDPOINT": "minio.storage:9000",
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "0",
        "AWS_REGION": "eu-west-1",
        "S3_REGION": "ignored",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
    }
    settings = S3Settings.from_env(env)
    assert settings == S3Settings("http://minio.storage:9000", "eu-west-1", False, "AK", "SK")


def test_settings_defaults_follow_tf_serving():
    assert S3Settings.from_env({}) == S3Settings(None, "us-east-1", True, None, None)
    https = S3Settings.from_env({"S3_ENDPOINT": "s3.example.com", "S3_REGION": "ap-south-1"})
    assert https.endpoint_url == "https://s3.example.com"  # S3_USE_HTTPS unset means https
    assert https.region == "ap-south-1"  # S3_REGION is the fallback for AWS_REGION
    assert S3Settings.from_env({"S3_ENDPOINT": "h:1", "S3_USE_HTTPS": "1"}).endpoint_url == "https://h:1"


def test_endpoint_url_overrides_the_environment():
    settings = S3Settings.from_env({"S3_ENDPOINT": "a:1", "S3_USE_HTTPS": "0"}, endpoint_url="http://b:2")
    assert settings.endpoint_url == "http://b:2"


@pytest.mark.s3
def test_concurrent_verifies_count_their_own_traffic(checker, s3_bucket, put_version):
    put_version("model/00000123", model_files(HALF_PLUS_TWO))

    def one(_):
        return checker.verify(f"s3://{s3_bucket}/model", VersionPolicy("latest"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(pool.map(one, range(24)))
    assert {r.verdict for r in reports} == {Verdict.VALID}
    assert {r.stats.requests for r in reports} == {3}
    assert len({r.stats.bytes_received for r in reports}) == 1
