"""`storage.mode: sync`: the containers that fill TF Serving's local model directory from S3.

An init container (`--once`) puts the versions the policy selects in place before TF Serving starts, so it
starts with a model; the sidecar keeps them current every `fileSystemPollWaitSeconds` (0: TF Serving polls
once, so there is no sidecar either). Both run this project's image with the command line of
rulebook.sync.SyncSpec, the contract the webhook reads back. TF Serving mounts the directory read-only.
"""

from __future__ import annotations

from generator.catalogue import Deployment
from generator.render import podparts, tfserving
from rulebook.names import HEALTH_PATH, READY_PATH
from rulebook.sync import HTTP_PORT, PROGRAM, SyncSpec

VOLUME = "models"
INIT_CONTAINER = "sync-init"
SIDECAR = "sync"
PORT_NAME = "sync"


def spec(deployment: Deployment, *, once: bool) -> SyncSpec:
    settings = deployment.settings
    return SyncSpec(
        source=deployment.model.base_path,
        dest=tfserving.base_path(deployment),
        policy=settings.version_policy,
        interval=settings.poll_wait_seconds,
        once=once,
    )


def has_sidecar(deployment: Deployment) -> bool:
    return deployment.settings.poll_wait_seconds > 0


def init_container(deployment: Deployment, image: str) -> dict:
    return _container(INIT_CONTAINER, deployment, image, once=True)


def sidecar(deployment: Deployment, image: str) -> dict:
    container = _container(SIDECAR, deployment, image, once=False)
    return {
        **container,
        "ports": [{"name": PORT_NAME, "containerPort": HTTP_PORT, "protocol": "TCP"}],
        # Ready once every selected version is in place: the pod is Ready only when TF Serving can serve.
        "readinessProbe": _probe(READY_PATH, period=5),
        "livenessProbe": _probe(HEALTH_PATH, period=10),
    }


def _probe(path: str, *, period: int) -> dict:
    return {"httpGet": {"path": path, "port": PORT_NAME}, "periodSeconds": period, "failureThreshold": 3}


def _container(name: str, deployment: Deployment, image: str, *, once: bool) -> dict:
    storage = deployment.settings.storage
    container: dict = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [PROGRAM],
        "args": spec(deployment, once=once).args(),
        "env": podparts.tools_env(storage),
    }
    resources = podparts.resource_list(storage.sync.requests, storage.sync.limits)
    if resources:
        container["resources"] = resources
    container["securityContext"] = podparts.container_security_context()
    container["volumeMounts"] = [
        {"name": VOLUME, "mountPath": tfserving.MODELS_DIR},
        podparts.tmp_mount(),
    ]
    return container


def volume(deployment: Deployment) -> dict:
    return {"name": VOLUME, "emptyDir": {"sizeLimit": deployment.settings.storage.sync.size_limit}}


def serving_mount() -> dict:
    """The model directory in the TF Serving container: read-only, it only ever reads versions."""
    return {"name": VOLUME, "mountPath": tfserving.MODELS_DIR, "readOnly": True}
