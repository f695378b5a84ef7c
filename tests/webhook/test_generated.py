"""The generator's own rendered Deployments (`kubectl kustomize overlays/<env>/<model>`) through the served
webhook: every one is understood completely and admitted when its models are complete in S3."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devtools.admission import build_review
from tests.webhook.deployments import upload_model

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(
    p.parent
    for p in ROOT.glob("overlays/*/*/kustomization.yaml")
    if not p.parent.name.startswith("_") and p.parent.parent.name not in ("base", "components")
)

pytestmark = [
    pytest.mark.s3,
    pytest.mark.kubectl,
    pytest.mark.skipif(not OVERLAYS, reason="no generated overlays/ yet (run tfs-gitops generate)"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH"),
]


def _render(overlay: Path) -> tuple[dict, dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and "models.config" in d.get("data", {}))
    return deployment, configmap


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[f"{p.parent.name}/{p.name}" for p in OVERLAYS])
def test_generated_deployment_is_admitted(overlay, served, s3_server, s3_bucket, fake_kube):
    deployment, configmap = _render(overlay)
    text = configmap["data"]["models.config"]
    # The catalogue's bucket becomes this test's bucket; the S3 server is the one on the allow-list.
    text = re.sub(r's3://[^/"]+/', f"s3://{s3_bucket}/", text)
    namespace = deployment["metadata"]["namespace"]
    fake_kube.add_configmap(namespace, configmap["metadata"]["name"], {"models.config": text})
    for prefix in re.findall(rf's3://{s3_bucket}/([^"]+)"', text):
        upload_model(s3_server.client(), s3_bucket, prefix.rstrip("/"), ("00000123", "00000124"))
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for item in container.get("env", []):
            if item["name"] == "S3_ENDPOINT":
                item["value"] = s3_server.host_port
    status, body = served.post(build_review(deployment, namespace=namespace))
    assert status == 200
    assert body["response"] == {"uid": body["response"]["uid"], "allowed": True}
