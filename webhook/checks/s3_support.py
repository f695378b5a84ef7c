"""s3-support: an s3:// model path needs an image that can read S3.

The official tensorflow/serving images lost their S3 filesystem in 2.7.0, so 2.7 and later (and latest,
nightly) cannot load s3:// paths. Other configured image repositories are custom builds: not judged here.
"""

from __future__ import annotations

from rulebook.images import LAST_STOCK_WITH_S3, STOCK_TFSERVING, ImageRef, S3Support
from webhook.checks import CheckResult
from webhook.extract import ServingContainer
from webhook.messages import clip

NAME = "s3-support"


def check(container: ServingContainer) -> CheckResult:
    s3_models = [m for m in container.models if m.base_path.startswith("s3://")]
    if not s3_models:
        return CheckResult.passed(NAME)
    model = s3_models[0]
    readable = ImageRef.parse(container.image).s3_support()
    image, path = clip(container.image, 80), clip(model.base_path, 90)
    if readable is S3Support.UNKNOWN:
        return CheckResult.undecided(
            NAME,
            f'cannot tell whether {image} (container "{container.name}") can read {path} (model '
            f'"{model.name}"): pin a version tag',
            "on_unresolved",
        )
    if readable is S3Support.NO:
        return CheckResult.failed(
            NAME,
            f'model "{model.name}" is at {path} but {image} cannot read S3 (the S3 filesystem was removed '
            f"in tensorflow/serving 2.7.0); use {STOCK_TFSERVING}:{LAST_STOCK_WITH_S3} or an image built "
            "with S3 support",
        )
    return CheckResult.passed(NAME)
