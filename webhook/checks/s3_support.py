"""s3-support: an s3:// model path needs an image that can read S3.

The official tensorflow/serving images lost their S3 filesystem in 2.7.0, so 2.7 and later (and latest,
nightly) cannot load s3:// paths. Other configured image repositories are custom builds: not judged here.
"""

from __future__ import annotations

import re

from webhook.checks import CheckResult
from webhook.extract import ServingContainer, split_image
from webhook.messages import clip

NAME = "s3-support"
OFFICIAL = "tensorflow/serving"
LAST_WITH_S3 = "2.6.5"
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def image_can_read_s3(image: str) -> bool | None:
    """True/False for official images, None when the version cannot be told (digest only, odd tag)."""
    repo, tag, digest = split_image(image)
    if repo != OFFICIAL:
        return True
    if tag is None:
        return None if digest else False  # no tag at all means :latest
    if tag.startswith(("latest", "nightly")):
        return False
    match = _VERSION.match(tag)
    if match is None:
        return None
    return (int(match.group(1)), int(match.group(2))) < (2, 7)


def check(container: ServingContainer) -> CheckResult:
    s3_models = [m for m in container.models if m.base_path.startswith("s3://")]
    if not s3_models:
        return CheckResult.passed(NAME)
    model = s3_models[0]
    readable = image_can_read_s3(container.image)
    image, path = clip(container.image, 80), clip(model.base_path, 90)
    if readable is None:
        return CheckResult.undecided(
            NAME,
            f'cannot tell whether {image} (container "{container.name}") can read {path} (model '
            f'"{model.name}"): pin a version tag',
            "on_unresolved",
        )
    if not readable:
        return CheckResult.failed(
            NAME,
            f'model "{model.name}" is at {path} but {image} cannot read S3 (the S3 filesystem was removed '
            f"in tensorflow/serving 2.7.0); use {OFFICIAL}:{LAST_WITH_S3} or an image built with S3 support",
        )
    return CheckResult.passed(NAME)
