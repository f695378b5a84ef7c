"""TF Serving configuration files (text-format protos): ModelServerConfig, monitoring, batching."""

from __future__ import annotations

from generator.catalogue import Batching, Deployment

CONFIG_DIR = "/etc/tfserving"
METRICS_PATH = "/monitoring/prometheus/metrics"
GRPC_PORT = 8500
REST_PORT = 8501


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def models_config(deployment: Deployment) -> str:
    model, settings = deployment.model, deployment.settings
    policy = settings.version_policy
    lines = [
        "model_config_list {",
        "  config {",
        f"    name: {_string(model.serving_name)}",
        f"    base_path: {_string(model.base_path)}",
        '    model_platform: "tensorflow"',
        "    model_version_policy {",
    ]
    if policy.kind == "all":
        lines += ["      all {", "      }"]
    elif policy.kind == "specific":
        lines += ["      specific {", *(f"        versions: {v}" for v in policy.versions), "      }"]
    else:
        lines += ["      latest {", f"        num_versions: {policy.latest}", "      }"]
    lines.append("    }")
    for label, version in settings.version_labels:
        lines += ["    version_labels {", f"      key: {_string(label)}", f"      value: {version}", "    }"]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def monitoring_config() -> str:
    return f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


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
        f"--model_config_file={CONFIG_DIR}/models.config",
    ]
    if settings.monitoring:
        args.append(f"--monitoring_config_file={CONFIG_DIR}/monitoring.config")
    args.append(f"--file_system_poll_wait_seconds={settings.poll_wait_seconds}")
    if settings.batching.enabled:
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_DIR}/batching.config"]
    return args
