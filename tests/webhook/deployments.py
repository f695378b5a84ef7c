"""TF Serving Deployments in the generator's shape (deploy_contract.md), and models in S3, for the tests."""

from __future__ import annotations

import copy
from pathlib import Path

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "admission"
HALF_PLUS_TWO = TESTDATA / "half_plus_two"
NAMESPACE = "tfserving-dev"
CONFIGMAP = "half-plus-two-tfserving-config-4926d9fb65"


def models_config(
    name: str,
    base_path: str,
    policy: str = "latest {\n        num_versions: 1\n      }",
    labels: dict[str, int] | None = None,
) -> str:
    label_text = "".join(
        f'    version_labels {{\n      key: "{k}"\n      value: {v}\n    }}\n'
        for k, v in (labels or {}).items()
    )
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{name}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{\n      {policy}\n    }}\n{label_text}  }}\n}}\n"
    )


def deployment(
    *,
    s3_endpoint: str,
    image: str = "tensorflow/serving:2.6.2",
    name: str = "half-plus-two",
    namespace: str = NAMESPACE,
    configmap: str = CONFIGMAP,
    gpus: int | None = None,
) -> dict:
    container = {
        "name": "tfserving",
        "image": image,
        "command": ["/usr/bin/tensorflow_model_server"],
        "args": [
            "--port=8500",
            "--rest_api_port=8501",
            "--model_config_file=/etc/tfserving/models.config",
            "--monitoring_config_file=/etc/tfserving/monitoring.config",
            "--file_system_poll_wait_seconds=5",
        ],
        "env": [
            {"name": "S3_ENDPOINT", "value": s3_endpoint},
            {"name": "S3_USE_HTTPS", "value": "0"},
            {"name": "S3_VERIFY_SSL", "value": "0"},
            {"name": "AWS_REGION", "value": "us-east-1"},
            {
                "name": "AWS_ACCESS_KEY_ID",
                "valueFrom": {"secretKeyRef": {"name": "tfs-s3-credentials", "key": "AWS_ACCESS_KEY_ID"}},
            },
            {
                "name": "AWS_SECRET_ACCESS_KEY",
                "valueFrom": {"secretKeyRef": {"name": "tfs-s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}},
            },
        ],
        "ports": [{"containerPort": 8500, "name": "grpc"}, {"containerPort": 8501, "name": "http"}],
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "250m", "memory": "256Mi"},
        },
        "volumeMounts": [
            {"name": "tfserving-config", "mountPath": "/etc/tfserving", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if gpus is not None:
        container["resources"]["limits"]["nvidia.com/gpu"] = str(gpus)
        container["resources"]["requests"]["nvidia.com/gpu"] = str(gpus)
    labels = {
        "app.kubernetes.io/name": "tfserving",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/part-of": "tfserving-gitops",
        "app.kubernetes.io/managed-by": "tfs-gitops",
        "tfs-gitops/environment": "dev",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-tfserving", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": "tfserving", "app.kubernetes.io/instance": name}
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": [
                        {"name": "tfserving-config", "configMap": {"name": configmap}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def with_container(deployment_: dict, **changes) -> dict:
    out = copy.deepcopy(deployment_)
    out["spec"]["template"]["spec"]["containers"][0].update(changes)
    return out


def set_env(deployment_: dict, name: str, value: str) -> dict:
    out = copy.deepcopy(deployment_)
    env = out["spec"]["template"]["spec"]["containers"][0]["env"]
    for item in env:
        if item["name"] == name:
            item["value"] = value
            break
    else:
        env.append({"name": name, "value": value})
    return out


def upload_model(
    client,
    bucket: str,
    prefix: str,
    versions: tuple[str, ...] = ("00000123",),
    leave_out: tuple[str, ...] = (),
) -> str:
    """Upload half_plus_two versions to s3://bucket/prefix; `leave_out`: relative paths to skip."""
    for version in versions:
        for path in sorted((HALF_PLUS_TWO / version).rglob("*")):
            if path.is_file():
                rel = path.relative_to(HALF_PLUS_TWO).as_posix()
                if rel not in leave_out:
                    client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=path.read_bytes())
    return f"s3://{bucket}/{prefix}"
