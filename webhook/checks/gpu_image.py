"""gpu-image: a GPU image needs an nvidia.com/gpu limit > 0, and a GPU limit needs a GPU image.

Kubernetes rules for extended resources: they are set in limits; requests, if given, must equal limits; they
are whole numbers. An image pinned only by digest has no tag to tell its variant: the configured choice
(WEBHOOK_ON_UNKNOWN_VARIANT) decides.
"""

from __future__ import annotations

import re

from rulebook.images import ImageRef
from rulebook.names import GPU_RESOURCE
from webhook.checks import CheckResult
from webhook.extract import ServingContainer
from webhook.messages import clip

NAME = "gpu-image"
_WHOLE = re.compile(r"^\d{1,9}$")


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and _WHOLE.match(value.strip()):
        return int(value.strip())
    return None


def check(container: ServingContainer, marker: str = "gpu") -> CheckResult:
    name, image = container.name, clip(container.image, 90)
    raw_limit = container.limits.get(GPU_RESOURCE)
    raw_request = container.requests.get(GPU_RESOURCE)
    limit = _count(raw_limit) if raw_limit is not None else 0
    request = _count(raw_request) if raw_request is not None else None
    if limit is None or (raw_request is not None and request is None):
        bad = raw_limit if limit is None else raw_request
        return CheckResult.failed(
            NAME,
            f'container "{name}": {GPU_RESOURCE} {clip(str(bad), 20)!r} is not a '
            "whole number; set a whole number of GPUs in resources.limits",
        )
    if raw_request is not None and raw_limit is None:
        return CheckResult.failed(
            NAME,
            f'container "{name}" requests {GPU_RESOURCE} without a limit; set '
            f'resources.limits["{GPU_RESOURCE}"] (requests, if set, must equal it)',
        )
    if request is not None and request != limit:
        return CheckResult.failed(
            NAME,
            f'container "{name}" requests {request} {GPU_RESOURCE} but limits '
            f"{limit}; GPU requests must equal limits (or be left out)",
        )
    ref = ImageRef.parse(container.image)
    gpu_image = ref.is_gpu(marker)
    if gpu_image is None:
        return CheckResult.undecided(
            NAME,
            f'cannot tell whether {image} (container "{name}") is a GPU image: it is pinned by digest '
            f"only; pin it as {clip(ref.repository, 60)}:TAG@DIGEST",
            "on_unknown_variant",
        )
    if gpu_image and limit == 0:
        cpu = clip(_suggestion(ref, gpu=False, marker=marker), 90)
        return CheckResult.failed(
            NAME,
            f'container "{name}" runs the GPU image {image} without a GPU; set '
            f'resources.limits["{GPU_RESOURCE}"] to 1 or more, or use the CPU image {cpu}',
        )
    if not gpu_image and limit > 0:
        gpu = clip(_suggestion(ref, gpu=True, marker=marker), 90)
        return CheckResult.failed(
            NAME,
            f'container "{name}" has {limit} {GPU_RESOURCE} but {image} is not a GPU image; use '
            f"{gpu} or remove the GPU limit",
        )
    return CheckResult.passed(NAME)


def _suggestion(ref: ImageRef, *, gpu: bool, marker: str) -> str:
    # Shown with the normalised repository, as the messages always have.
    suggestion = ImageRef.parse(ref.with_variant(gpu=gpu, marker=marker))
    return f"{ref.repository}:{suggestion.tag}"
