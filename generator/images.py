"""Container image references, and which TF Serving images can read s3:// model paths."""

from __future__ import annotations

import re
from dataclasses import dataclass

TFSERVING_REPOSITORIES = frozenset(
    {"tensorflow/serving", "docker.io/tensorflow/serving", "index.docker.io/tensorflow/serving"}
)
GPU_TAG_MARKER = "gpu"
# Stock tensorflow/serving images lost the built-in S3 filesystem in 2.7 (it moved to tensorflow-io).
FIRST_VERSION_WITHOUT_S3 = (2, 7)
_VERSION_TAG = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-|$)")


@dataclass(frozen=True, slots=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        rest, _, digest = reference.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :], digest or None)
        return cls(rest, None, digest or None)

    @property
    def is_gpu(self) -> bool:
        return self.tag is not None and GPU_TAG_MARKER in self.tag

    @property
    def is_stock_tfserving(self) -> bool:
        return self.repository in TFSERVING_REPOSITORIES


def s3_refusal(reference: str) -> str | None:
    """Why this image cannot serve s3:// model paths, or None when it can (or is not a stock image)."""
    image = ImageRef.parse(reference)
    if not image.is_stock_tfserving:
        return None  # a custom build is trusted to include an S3 filesystem
    match = _VERSION_TAG.match(image.tag or "")
    if match and (int(match[1]), int(match[2])) < FIRST_VERSION_WITHOUT_S3:
        return None
    what = f"tag {image.tag!r}" if image.tag else "no version tag"
    return (
        f"{reference} cannot read s3:// model paths: stock tensorflow/serving images from 2.7 on have no "
        f"S3 filesystem ({what}); pin a 2.6.x tag such as tensorflow/serving:2.6.2 "
        f"(2.6.2-gpu for GPU models) until the S3 sync sidecar is available"
    )
