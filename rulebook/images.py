"""Container image references as TF Serving deployments use them, read alike by generator and webhook.

Docker Hub has several spellings of one repository: `tensorflow/serving`, `docker.io/tensorflow/serving`,
`index.docker.io/…`, `registry-1.docker.io/…`, and `library/` for official images (`docker.io/library/nginx`
is `nginx`). Repositories are compared in that normalised form, lower-case. The tag is kept as written; the
variant it names is read case-insensitively (`2.6.2-GPU` is a GPU tag).

Stock `tensorflow/serving` images read `s3://` up to 2.6.x; 2.7 removed the S3 filesystem (serving#1963).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

STOCK_TFSERVING = "tensorflow/serving"
GPU_MARKER = "gpu"
FIRST_STOCK_WITHOUT_S3 = (2, 7)
LAST_STOCK_WITH_S3 = "2.6.5"  # the last 2.6.x release (serving#2013)
_DOCKER_HUB_HOSTS = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
_VERSION_TAG = re.compile(r"^(\d+)\.(\d+)")
_MOVING_TAGS = ("latest", "nightly")


class S3Support(enum.Enum):
    """Whether an image can read s3:// model paths."""

    YES = "yes"  # a stock image up to 2.6.x, or a custom image (trusted to carry an S3 filesystem)
    NO = "no"  # a stock image from 2.7 on, `latest`, `nightly`, or no tag (which means latest)
    UNKNOWN = "unknown"  # a stock image pinned by digest only, or a tag that names no version


def normalize_repository(name: str) -> str:
    """`registry-1.docker.io/library/nginx` → `nginx`; other registries keep their host; lower-case."""
    repository = name.strip().lower()
    for host in _DOCKER_HUB_HOSTS:
        if repository.startswith(host):
            repository = repository[len(host) :]
            break
    if repository.startswith("library/") and repository.count("/") == 1:
        repository = repository[len("library/") :]
    return repository


@dataclass(frozen=True, slots=True)
class ImageRef:
    name: str  # the repository as written (what a pull and kustomize's newName use)
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        rest, _, digest = reference.strip().partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :], digest or None)
        return cls(rest, None, digest or None)

    @property
    def repository(self) -> str:
        """The repository in the normalised form used for comparisons."""
        return normalize_repository(self.name)

    @property
    def is_stock_tfserving(self) -> bool:
        return self.repository == STOCK_TFSERVING

    def is_gpu(self, marker: str = GPU_MARKER) -> bool | None:
        """Whether the tag names a GPU variant; None when there is no tag to tell (pinned by digest only)."""
        if self.tag is None:
            return None if self.digest else False  # no tag at all means :latest, a CPU image
        return marker.lower() in self.tag.lower()

    def stock_version(self) -> tuple[int, int] | None:
        """(major, minor) of a stock tag such as `2.6.2-gpu`; None when the tag names no version."""
        match = _VERSION_TAG.match(self.tag or "")
        return (int(match[1]), int(match[2])) if match else None

    def s3_support(self) -> S3Support:
        if not self.is_stock_tfserving:
            return S3Support.YES
        if self.tag is None:
            return S3Support.UNKNOWN if self.digest else S3Support.NO
        if self.tag.lower().startswith(_MOVING_TAGS):
            return S3Support.NO
        version = self.stock_version()
        if version is None:
            return S3Support.UNKNOWN
        return S3Support.YES if version < FIRST_STOCK_WITHOUT_S3 else S3Support.NO

    def with_variant(self, gpu: bool, marker: str = GPU_MARKER) -> str:
        """The same image in the other variant, as a suggestion: `…:2.6.2-gpu` ↔ `…:2.6.2`."""
        tag = self.tag or "latest"
        cpu_tag = re.sub(rf"[-_.]?{re.escape(marker)}", "", tag, flags=re.IGNORECASE) or "latest"
        return f"{self.name}:{cpu_tag}-{marker}" if gpu else f"{self.name}:{cpu_tag}"


def is_tfserving_image(reference: str, repositories: tuple[str, ...]) -> bool:
    """Whether `reference` is one of the TF Serving image repositories (compared normalised)."""
    return ImageRef.parse(reference).repository in {normalize_repository(r) for r in repositories}
