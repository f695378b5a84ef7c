"""TF Serving configuration files (text-format protos): ModelServerConfig, monitoring, batching."""

from __future__ import annotations

import posixpath

from generator.catalogue import SYNC, Batching, Deployment
from rulebook.modelconfig import ModelEntry, render_model_server_config
from rulebook.server import GRPC_PORT, PROMETHEUS_PATH, REST_PORT, Flag

CONFIG_DIR = "/etc/tfserving"
MODELS_DIR = "/models"  # storage.mode sync: the emptyDir the sync containers fill, read-only for TF Serving


def base_path(deployment: Deployment) -> str:
    """Where TF Serving reads the model: its s3:// path, or in sync mode the local copy of it."""
    if deployment.settings.storage.mode == SYNC:
        return posixpath.join(MODELS_DIR, deployment.model.serving_name)
    return deployment.model.base_path


def model_entry(deployment: Deployment, *, source: bool = False) -> ModelEntry:
    """What TF Serving is told to load for this deployment (one model); with `source`, from S3 whatever
    the storage mode (what the watch and the sync containers read)."""
    settings = deployment.settings
    return ModelEntry(
        name=deployment.model.serving_name,
        base_path=deployment.model.base_path if source else base_path(deployment),
        policy=settings.version_policy,
        labels=settings.version_labels,
    )


def models_config(deployment: Deployment) -> str:
    return render_model_server_config([model_entry(deployment)])


def monitoring_config() -> str:
    return f'prometheus_config {{\n  enable: true\n  path: "{PROMETHEUS_PATH}"\n}}\n'


def batching_config(batching: Batching) -> str:
    return (
        f"max_batch_size {{ value: {batching.max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {batching.batch_timeout_micros} }}\n"
        f"max_enqueued_batches {{ value: {batching.max_enqueued_batches} }}\n"
        f"num_batch_threads {{ value: {batching.num_batch_threads} }}\n"
    )


def server_args(deployment: Deployment) -> list[str]:
    settings = deployment.settings
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--{Flag.MODEL_CONFIG_FILE}={CONFIG_DIR}/models.config",
    ]
    if settings.monitoring:
        args.append(f"--monitoring_config_file={CONFIG_DIR}/monitoring.config")
    args.append(f"--{Flag.POLL_WAIT_SECONDS}={settings.poll_wait_seconds}")
    if settings.batching.enabled:
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_DIR}/batching.config"]
    return args
