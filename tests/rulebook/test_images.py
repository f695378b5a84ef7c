from __future__ import annotations

import pytest

from generator.rules import s3_refusal
from rulebook.images import ImageRef, S3Support


@pytest.mark.parametrize(
    "reference",
    [
        "tensorflow/serving:2.6.2",
        "tensorflow/serving:2.6.2-gpu",
        "tensorflow/serving:1.15.0",
        "docker.io/tensorflow/serving:2.5.1",
        "registry.example.com/tfs:2.15.0",
        "my/serving:latest",
    ],
)
def test_images_that_can_read_s3(reference):
    assert s3_refusal(reference) is None


@pytest.mark.parametrize(
    "reference",
    [
        "tensorflow/serving:2.7.0",
        "tensorflow/serving:2.14.1-gpu",
        "tensorflow/serving:latest",
        "tensorflow/serving",
        "tensorflow/serving:nightly",
        "index.docker.io/tensorflow/serving:3.0.0",
        "tensorflow/serving@sha256:" + "0" * 64,
    ],
)
def test_images_refused_with_the_reason_and_the_fix(reference):
    message = s3_refusal(reference)
    assert "cannot read s3://" in message and "from 2.7 on" in message and "pin a 2.6.x tag" in message


def test_image_reference_parsing():
    image = ImageRef.parse("localhost:5000/tf/serving:2.6.2-gpu@sha256:" + "a" * 64)
    assert (image.repository, image.tag, image.digest) == (
        "localhost:5000/tf/serving",
        "2.6.2-gpu",
        "sha256:" + "a" * 64,
    )
    assert image.is_gpu() and not image.is_stock_tfserving
    assert ImageRef.parse("localhost:5000/tf").tag is None


@pytest.mark.parametrize(
    "reference",
    [
        "tensorflow/serving:2.6.2",
        "docker.io/tensorflow/serving:2.6.2",
        "index.docker.io/tensorflow/serving:2.6.2",
        "registry-1.docker.io/tensorflow/serving:2.6.2",
        "Docker.IO/TensorFlow/Serving:2.6.2",
        "tensorflow/serving:2.6.2@sha256:" + "b" * 64,
    ],
)
def test_docker_hub_spellings_are_one_repository(reference):
    image = ImageRef.parse(reference)
    assert image.repository == "tensorflow/serving" and image.is_stock_tfserving
    assert image.tag == "2.6.2"


def test_official_images_under_library():
    assert ImageRef.parse("docker.io/library/nginx:1").repository == "nginx"
    assert ImageRef.parse("registry-1.docker.io/library/busybox").repository == "busybox"
    assert (
        ImageRef.parse("registry.example.com/library/nginx:1").repository
        == "registry.example.com/library/nginx"
    )


@pytest.mark.parametrize(
    ("tag", "gpu"),
    [
        ("2.6.2-gpu", True),
        ("2.6.2-GPU", True),
        ("latest-gpu", True),
        ("2.6.2", False),
        ("2.6.2-devel", False),
    ],
)
def test_gpu_variant_is_read_case_insensitively(tag, gpu):
    assert ImageRef.parse(f"tensorflow/serving:{tag}").is_gpu() is gpu


def test_gpu_variant_of_a_digest_only_image_is_unknown():
    assert ImageRef.parse("tensorflow/serving@sha256:" + "c" * 64).is_gpu() is None
    assert ImageRef.parse("tensorflow/serving").is_gpu() is False  # no tag: :latest, the CPU image


@pytest.mark.parametrize(
    ("reference", "support"),
    [
        ("tensorflow/serving:2.6.2", S3Support.YES),
        ("registry-1.docker.io/tensorflow/serving:2.6.5-gpu", S3Support.YES),
        ("tensorflow/serving:1.15.0", S3Support.YES),
        ("registry-1.docker.io/tensorflow/serving:2.14.1", S3Support.NO),
        ("docker.io/library/tensorflow/serving:2.19.0", S3Support.YES),  # not Docker Hub's tensorflow/serving
        ("tensorflow/serving:LATEST", S3Support.NO),
        ("tensorflow/serving:nightly-gpu", S3Support.NO),
        ("tensorflow/serving", S3Support.NO),
        ("tensorflow/serving@sha256:" + "d" * 64, S3Support.UNKNOWN),
        ("tensorflow/serving:stable", S3Support.UNKNOWN),
        ("ghcr.io/acme/tf-serving-s3:2.19.0", S3Support.YES),
    ],
)
def test_s3_support(reference, support):
    assert ImageRef.parse(reference).s3_support() is support


def test_variant_suggestions():
    assert (
        ImageRef.parse("tensorflow/serving:2.6.2-gpu").with_variant(gpu=False) == "tensorflow/serving:2.6.2"
    )
    assert ImageRef.parse("tensorflow/serving:2.6.2").with_variant(gpu=True) == "tensorflow/serving:2.6.2-gpu"
