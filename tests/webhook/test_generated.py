"""The generator's own rendered Deployments (`kubectl kustomize overlays/<env>/<model>`) through the served
webhook: every one is understood completely and admitted when its models are complete in S3; in
storage.mode sync, denied when the sync containers' source is incomplete, and denied when the model config
and the sync line disagree or no sync container fills the path TF Serving reads."""

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
SYNCED = [p for p in OVERLAYS if "initContainers" in (p / "kustomization.yaml").read_text()]
_S3_URI = re.compile(r's3://[^/"\s]+/')

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


def _all_containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _prepare(overlay: Path, s3_server, bucket: str, fake_kube) -> tuple[dict, list[str]]:
    """The overlay's Deployment pointed at the test's bucket and S3 server (the one on the allow-list), its
    ConfigMap served by the stand-in API server; returns the S3 prefixes it reads."""
    deployment, configmap = _render(overlay)
    text = _S3_URI.sub(f"s3://{bucket}/", configmap["data"]["models.config"])
    namespace = deployment["metadata"]["namespace"]
    fake_kube.add_configmap(namespace, configmap["metadata"]["name"], {"models.config": text})
    prefixes = re.findall(rf's3://{bucket}/([^"]+)"', text)
    for container in _all_containers(deployment):
        container["args"] = [_S3_URI.sub(f"s3://{bucket}/", arg) for arg in container.get("args", [])]
        prefixes += [arg.split("/", 3)[3] for arg in container["args"] if arg.startswith("s3://")]
        for item in container.get("env", []):
            if item["name"] == "S3_ENDPOINT":
                item["value"] = s3_server.host_port
    return deployment, sorted({prefix.rstrip("/") for prefix in prefixes})


def _post(served, deployment: dict) -> dict:
    status, body = served.post(build_review(deployment, namespace=deployment["metadata"]["namespace"]))
    assert status == 200
    return body["response"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[f"{p.parent.name}/{p.name}" for p in OVERLAYS])
def test_generated_deployment_is_admitted(overlay, served, s3_server, s3_bucket, fake_kube):
    deployment, prefixes = _prepare(overlay, s3_server, s3_bucket, fake_kube)
    assert prefixes
    for prefix in prefixes:
        upload_model(s3_server.client(), s3_bucket, prefix, ("00000123", "00000124"))
    response = _post(served, deployment)
    assert response == {"uid": response["uid"], "allowed": True}


def test_the_example_has_sync_mode_models():
    assert {p.name for p in SYNCED} == {"half-plus-three"}


@pytest.mark.parametrize("overlay", SYNCED, ids=[f"{p.parent.name}/{p.name}" for p in SYNCED])
def test_generated_sync_deployment_is_denied_when_its_source_is_incomplete(
    overlay, served, s3_server, s3_bucket, fake_kube
):
    deployment, (prefix,) = _prepare(overlay, s3_server, s3_bucket, fake_kube)
    upload_model(s3_server.client(), s3_bucket, prefix, ("00000123", "00000124"))
    for version in ("00000123", "00000124"):  # whichever the environment's policy selects
        s3_server.client().delete_object(
            Bucket=s3_bucket, Key=f"{prefix}/{version}/variables/variables.index"
        )
    response = _post(served, deployment)
    assert response["allowed"] is False
    selected = 123 if overlay.parent.name == "prod" else 124  # prod pins 123; the others load the latest
    assert response["status"] == {
        "code": 403,
        "message": (
            f'savedmodel: model "half_plus_three" version {selected} (s3://{s3_bucket}/{prefix}/'
            f"{selected:08d}) is invalid: variables/variables.index is missing: the variables cannot be "
            "restored (a partial upload?); finish the upload or pin a complete version (model_version_policy "
            "specific)"
        ),
    }


def _dev_sync(s3_server, bucket: str, fake_kube) -> tuple[dict, str]:
    overlay = next(p for p in SYNCED if p.parent.name == "dev")
    deployment, (prefix,) = _prepare(overlay, s3_server, bucket, fake_kube)
    upload_model(s3_server.client(), bucket, prefix, ("00000123",))
    return deployment, prefix


def test_a_sync_line_with_another_policy_is_denied(served, s3_server, s3_bucket, fake_kube):
    deployment, _ = _dev_sync(s3_server, s3_bucket, fake_kube)
    sidecar = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "sync")
    sidecar["args"][sidecar["args"].index("--policy") + 1] = "all"
    response = _post(served, deployment)
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        'savedmodel: model "half_plus_three" has policy latest in its model config but container "sync" '
        "syncs /models/half_plus_three with --policy all; make them the same, or TF Serving loads versions "
        "nobody checked"
    )


def test_a_local_path_no_sync_container_fills_is_denied(served, s3_server, s3_bucket, fake_kube):
    deployment, _ = _dev_sync(s3_server, s3_bucket, fake_kube)
    spec = deployment["spec"]["template"]["spec"]
    spec["initContainers"] = []
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "sync"]
    response = _post(served, deployment)
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 403,
        "message": (
            'savedmodel: model "half_plus_three" is at /models/half_plus_three, which no tfs-gitops sync '
            "container fills (the same volume and directory), so nothing checks what lands there; fill it "
            "with sync containers (storage.mode sync) or serve an s3:// path"
        ),
    }


def test_a_sync_container_on_another_volume_does_not_fill_the_path(served, s3_server, s3_bucket, fake_kube):
    deployment, _ = _dev_sync(s3_server, s3_bucket, fake_kube)
    spec = deployment["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "elsewhere", "emptyDir": {}})
    for container in spec["initContainers"] + [c for c in spec["containers"] if c["name"] == "sync"]:
        container["volumeMounts"][0]["name"] = "elsewhere"
    response = _post(served, deployment)
    assert response["allowed"] is False
    assert "which no tfs-gitops sync container fills" in response["status"]["message"]


def test_an_update_that_only_moves_the_sync_source_is_checked_again(served, s3_server, s3_bucket, fake_kube):
    old, prefix = _dev_sync(s3_server, s3_bucket, fake_kube)
    new = yaml.safe_load(yaml.safe_dump(old))
    for container in _all_containers(new):
        if container["name"].startswith("sync"):
            container["args"][1] = f"s3://{s3_bucket}/nothing-here"
    status, body = served.post(
        build_review(new, operation="UPDATE", old=old, namespace=new["metadata"]["namespace"])
    )
    assert status == 200 and body["response"]["allowed"] is False
    assert f"s3://{s3_bucket}/nothing-here" in body["response"]["status"]["message"]
