"""Table-driven tests of the local checks: gpu-image and s3-support."""

from __future__ import annotations

import pytest

from webhook.checks import Outcome, gpu_image, s3_support
from webhook.extract import ServedModel, ServingContainer


def _container(image: str, limit=None, request=None, models=()) -> ServingContainer:
    limits = {"cpu": "1"} | ({"nvidia.com/gpu": limit} if limit is not None else {})
    requests = {"cpu": "1"} | ({"nvidia.com/gpu": request} if request is not None else {})
    return ServingContainer(name="tfserving", image=image, limits=limits, requests=requests, models=models)


# (image, limit, request, outcome, message)
GPU_RULE = [
    ("tensorflow/serving:2.6.2", None, None, Outcome.PASS, ""),
    ("tensorflow/serving:2.6.2-gpu", "1", "1", Outcome.PASS, ""),
    ("tensorflow/serving:2.6.2-gpu", 2, None, Outcome.PASS, ""),
    ("tensorflow/serving:latest-gpu", "1", None, Outcome.PASS, ""),
    (
        "tensorflow/serving:2.6.2-gpu",
        None,
        None,
        Outcome.FAIL,
        'gpu-image: container "tfserving" runs the GPU image tensorflow/serving:2.6.2-gpu without a GPU; set '
        'resources.limits["nvidia.com/gpu"] to 1 or more, or use the CPU image tensorflow/serving:2.6.2',
    ),
    (
        "tensorflow/serving:2.6.2-gpu",
        "0",
        None,
        Outcome.FAIL,
        'gpu-image: container "tfserving" runs the GPU image tensorflow/serving:2.6.2-gpu without a GPU; set '
        'resources.limits["nvidia.com/gpu"] to 1 or more, or use the CPU image tensorflow/serving:2.6.2',
    ),
    (
        "tensorflow/serving:2.6.2",
        "1",
        "1",
        Outcome.FAIL,
        'gpu-image: container "tfserving" has 1 nvidia.com/gpu but tensorflow/serving:2.6.2 '
        "is not a GPU image; "
        "use tensorflow/serving:2.6.2-gpu or remove the GPU limit",
    ),
    (
        "tensorflow/serving",
        "1",
        None,
        Outcome.FAIL,
        'gpu-image: container "tfserving" has 1 nvidia.com/gpu but tensorflow/serving is not a GPU image; '
        "use tensorflow/serving:latest-gpu or remove the GPU limit",
    ),
    (
        "tensorflow/serving:2.6.2-gpu",
        None,
        "1",
        Outcome.FAIL,
        'gpu-image: container "tfserving" requests nvidia.com/gpu without a limit; set '
        'resources.limits["nvidia.com/gpu"] (requests, if set, must equal it)',
    ),
    (
        "tensorflow/serving:2.6.2-gpu",
        "2",
        "1",
        Outcome.FAIL,
        'gpu-image: container "tfserving" requests 1 nvidia.com/gpu but limits 2; GPU '
        "requests must equal limits "
        "(or be left out)",
    ),
    (
        "tensorflow/serving:2.6.2-gpu",
        "0.5",
        None,
        Outcome.FAIL,
        "gpu-image: container \"tfserving\": nvidia.com/gpu '0.5' is not a whole number; set "
        "a whole number of "
        "GPUs in resources.limits",
    ),
    (
        "tensorflow/serving@sha256:" + "a" * 64,
        None,
        None,
        Outcome.UNDECIDED,
        "gpu-image: cannot tell whether tensorflow/serving@sha256:"
        + "a" * 64
        + ' (container "tfserving") is a GPU '
        "image: it is pinned by digest only; pin it as tensorflow/serving:TAG@DIGEST",
    ),
    ("tensorflow/serving:2.6.2-gpu@sha256:" + "a" * 64, "1", None, Outcome.PASS, ""),
]


@pytest.mark.parametrize(("image", "limit", "request_", "outcome", "message"), GPU_RULE)
def test_gpu_rule(image, limit, request_, outcome, message):
    result = gpu_image.check(_container(image, limit, request_))
    assert (result.outcome, result.message) == (outcome, message)
    assert len(result.message) < 300
    if outcome is Outcome.UNDECIDED:
        assert result.choice == "on_unknown_variant"


def test_gpu_marker_is_configurable():
    assert gpu_image.check(_container("registry/tfs:2.6-cuda", "1"), marker="cuda").outcome is Outcome.PASS
    assert gpu_image.check(_container("registry/tfs:2.6-cuda", "1"), marker="gpu").outcome is Outcome.FAIL


S3 = (ServedModel("m", "s3://b/m"),)
# (image, models, outcome)
S3_RULE = [
    ("tensorflow/serving:2.6.2", S3, Outcome.PASS),
    ("tensorflow/serving:2.6.5-gpu", S3, Outcome.PASS),
    ("tensorflow/serving:1.15.0", S3, Outcome.PASS),
    ("tensorflow/serving:2.7.0", S3, Outcome.FAIL),
    ("tensorflow/serving:2.11.0-gpu", S3, Outcome.FAIL),
    ("tensorflow/serving:latest", S3, Outcome.FAIL),
    ("tensorflow/serving", S3, Outcome.FAIL),
    ("tensorflow/serving:nightly", S3, Outcome.FAIL),
    ("tensorflow/serving:2.11.0", (ServedModel("m", "gs://b/m"),), Outcome.PASS),
    # storage.mode sync: a current image reads a local directory the sync containers fill
    ("tensorflow/serving:2.19.0", (ServedModel("m", "/models/m"),), Outcome.PASS),
    ("tensorflow/serving@sha256:" + "b" * 64, S3, Outcome.UNDECIDED),
    ("tensorflow/serving:custom", S3, Outcome.UNDECIDED),
    ("registry.local/tfs-with-s3:2.15", S3, Outcome.PASS),
]


@pytest.mark.parametrize(("image", "models", "outcome"), S3_RULE)
def test_s3_support_rule(image, models, outcome):
    assert s3_support.check(_container(image, models=models)).outcome is outcome


def test_s3_support_message():
    result = s3_support.check(_container("tensorflow/serving:2.8.0", models=S3))
    assert result.message == (
        's3-support: model "m" is at s3://b/m but tensorflow/serving:2.8.0 cannot read S3 '
        "(the S3 filesystem was "
        "removed in tensorflow/serving 2.7.0); use tensorflow/serving:2.6.5 or an image built with S3 support"
    )
