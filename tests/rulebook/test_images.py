from __future__ import annotations

import pytest

from generator.rules import s3_refusal
from rulebook.images import ImageRef


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
