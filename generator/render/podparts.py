"""Pieces every generated pod shares: the user it runs as, the restricted security contexts, S3 settings.

Every pod runs as RUN_AS, a high uid (≥ 10000: no clash with users of the node) that is also the tools
image's USER (Dockerfile), so in `storage.mode: sync` the files the sync containers write and the
TF Serving container reads belong to one user. The contexts satisfy the restricted Pod Security Standard
(tests/generator/test_pod_security.py checks every rendered pod template against it).
"""

from __future__ import annotations

from generator.catalogue import Storage
from rulebook import s3

RUN_AS = 65532
TMP_VOLUME = "tmp"
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def pod_security_context() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def s3_env(storage: Storage) -> list[dict]:
    """The variables TF Serving's S3 filesystem reads (and `tfs-gitops sync`/`watch` read alike); the keys
    come from the credentials Secret, never from the repository."""
    return [
        *({"name": name, "value": value} for name, value in s3.tfserving_env(storage.endpoint).items()),
        {"name": s3.VERIFY_SSL_VARIABLE, "value": "1" if storage.verify_ssl else "0"},
        {"name": s3.REGION_VARIABLE, "value": storage.region},
        *(
            {"name": key, "valueFrom": {"secretKeyRef": {"name": storage.credentials_secret, "key": key}}}
            for key in CREDENTIAL_KEYS
        ),
    ]


def tools_env(storage: Storage) -> list[dict]:
    """The environment of a container running this project's image against S3."""
    return [
        *s3_env(storage),
        # The Secret's keys only: never fall back to the node's instance metadata credentials.
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]


def tmp_mount() -> dict:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def resource_list(requests: tuple[tuple[str, str], ...], limits: tuple[tuple[str, str], ...]) -> dict:
    result: dict = {}
    if limits:
        result["limits"] = dict(limits)
    if requests:
        result["requests"] = dict(requests)
    return result
