"""The webhook half of `make demo`: the rendered Deployment posted as an AdmissionReview to the webhook
served by gunicorn over TLS, exactly as the API server would, and the answer shown as kubectl prints it."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import yaml

from devtools.admission import build_review, kubectl_output
from devtools.kubeapi import FakeKubeAPI
from devtools.s3server import S3Endpoint
from devtools.webhookserver import ServedWebhook

WEBHOOK_NAME = "tfserving.tfs-gitops.io"


def rendered_objects(target: Path) -> list[dict]:
    text = subprocess.run(["kubectl", "kustomize", str(target)], check=True, capture_output=True,
                          text=True).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def point_at(deployment: dict, endpoint: S3Endpoint) -> dict:
    """The rendered Deployment with S3_ENDPOINT at the embedded server (a demo cluster's storage)."""
    deployment = copy.deepcopy(deployment)
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for var in container.get("env", []):
            if var["name"] == "S3_ENDPOINT":
                var["value"] = endpoint.host_port
    return deployment


def without_gpu_but_gpu_image(deployment: dict) -> dict:
    deployment = copy.deepcopy(deployment)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].split(":")[0] + ":2.6.2-gpu"
    return deployment


class WebhookStory:
    """The webhook and a stand-in API server (for the model-config ConfigMap) for one environment/model."""

    def __init__(self, endpoint: S3Endpoint, target: Path, workdir: Path):
        objects = rendered_objects(target)
        self.deployment = point_at(next(o for o in objects if o["kind"] == "Deployment"), endpoint)
        self.kube = FakeKubeAPI().start()
        for obj in objects:
            if obj["kind"] == "ConfigMap":
                self.kube.add_configmap(obj["metadata"]["namespace"], obj["metadata"]["name"], obj["data"])
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "KUBECONFIG": str(self.kube.write_kubeconfig(workdir / "kubeconfig")),
            "WEBHOOK_ALLOWED_S3_ENDPOINTS": endpoint.url,
            "WEBHOOK_CACHE_TTL_SECONDS": "0",  # the demo changes the bucket between admissions
            "AWS_ACCESS_KEY_ID": endpoint.access_key,
            "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
            "AWS_REGION": endpoint.region,
        }
        self.hook = ServedWebhook(env, workdir=workdir / "webhook").start()
        print(f"Admission webhook {WEBHOOK_NAME} served by gunicorn over TLS at {self.hook.url}")

    def apply(self, deployment: dict | None = None, what: str = "") -> bool:
        deployment = deployment or self.deployment
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        gpus = (container.get("resources", {}).get("limits") or {}).get("nvidia.com/gpu", 0)
        print(f"\n$ kubectl apply -f -   # {what or 'the rendered Deployment'}: image {container['image']}, "
              f"nvidia.com/gpu {gpus}")
        status, body = self.hook.post(build_review(deployment))
        if status != 200 or body is None:
            raise SystemExit(f"demo: the webhook answered HTTP {status}")
        print(kubectl_output(body, deployment, WEBHOOK_NAME))
        return bool(body["response"]["allowed"])

    def close(self) -> None:
        self.hook.stop()
        self.kube.stop()
