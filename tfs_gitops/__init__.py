"""tfserving-gitops: GitOps for TensorFlow Serving on Kubernetes, models in S3-compatible storage.

Packages: `rulebook` (what TF Serving accepts, stated once), `generator` (models.yaml → overlays),
`savedmodel` (SavedModel checks over S3), `webhook` (the admission webhook), and this one, the `tfs-gitops`
command.
"""

from __future__ import annotations

DISTRIBUTION = "tfserving-gitops"


def package_version() -> str:
    """The installed distribution's version: pyproject.toml is the only place it is written."""
    from importlib.metadata import PackageNotFoundError, version  # 30 ms: only when asked

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
