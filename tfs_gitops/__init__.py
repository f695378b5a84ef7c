"""tfserving-gitops: GitOps for TensorFlow Serving on Kubernetes, models in S3-compatible storage.

Packages: `rulebook` (what TF Serving accepts, stated once), `generator` (models.yaml → overlays),
`savedmodel` (SavedModel checks over S3), `webhook` (the admission webhook), and this one, the `tfs-gitops`
command.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed distribution's version: pyproject.toml is the only place it is written."""
    try:
        return version("tfserving-gitops")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
