"""What storage.mode sync and the watch render, against the contracts they share with the runtime: the sync
command line (rulebook.sync.SyncSpec), the image (Dockerfile), the model config (rulebook.modelconfig) and the
metric names (rulebook.names.ModelMetrics)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from generator import loader, render
from generator.catalogue import NATIVE, SYNC
from generator.render import podparts, watch
from generator.webhook_manifests import default_image
from rulebook.modelconfig import parse_model_server_config
from rulebook.names import ModelMetrics
from rulebook.sync import SyncSpec
from tests.generator.goldens import TESTDATA

ROOT = Path(__file__).resolve().parents[2]
SYNC_MODE = TESTDATA / "catalogues" / "sync-mode" / "models.yaml"

CATALOGUE = """\
apiVersion: tfs-gitops/v1alpha1
argocd: {repoURL: https://git.example.com/x.git}
defaults:
  storage: {endpoint: http://s3.example.com:9000}
environments:
  - name: dev
models:
"""


def _patch(files: dict[str, str], env: str, model: str) -> dict:
    kustomization = yaml.safe_load(files[f"{env}/{model}/kustomization.yaml"])
    return yaml.safe_load(kustomization["patches"][0]["patch"])


def _pod(files, env, model) -> dict:
    return _patch(files, env, model)["spec"]["template"]["spec"]


def test_modes_follow_the_image_unless_set():
    catalogue = loader.load(SYNC_MODE)
    modes = {(d.environment.name, d.model.name): d.settings.storage.mode for d in catalogue.deployments}
    assert modes == {
        ("dev", "current"): SYNC,
        ("dev", "gpu"): SYNC,
        ("dev", "old-image-synced"): SYNC,
        ("dev", "native"): NATIVE,
        ("prod", "current"): SYNC,
        ("prod", "gpu"): SYNC,
        ("prod", "old-image-synced"): SYNC,
        ("prod", "native"): NATIVE,
    }


def test_sync_containers_speak_the_sync_contract_and_tf_serving_reads_their_directory():
    files = render.render(loader.load(SYNC_MODE))
    pod = _pod(files, "prod", "current")
    (init,) = pod["initContainers"]
    serving, sidecar = pod["containers"]
    spec = SyncSpec.parse(sidecar["command"] + sidecar["args"])
    assert SyncSpec.parse(init["command"] + init["args"]) == SyncSpec(
        "s3://models/current", "/models/current_model", spec.policy, once=True
    )
    assert (spec.source, spec.dest, str(spec.policy), spec.interval, spec.once) == (
        "s3://models/current", "/models/current_model", "specific:3,4", 30, False,
    )  # fmt: skip
    config = parse_model_server_config(files["prod/current/models.config"])
    assert [(e.name, e.base_path, str(e.policy)) for e in config] == [
        ("current_model", "/models/current_model", "specific:3,4")
    ]
    assert serving["volumeMounts"] == [{"name": "models", "mountPath": "/models", "readOnly": True}]
    assert "env" not in serving  # no S3 settings, no keys: it reads a local directory
    assert {item["name"] for item in sidecar["env"]} >= {
        "S3_ENDPOINT",
        "S3_USE_HTTPS",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert pod["volumes"] == [{"name": "models", "emptyDir": {"sizeLimit": "4Gi"}}]
    assert init["image"] == sidecar["image"] == "registry.example.com/tfs-gitops:1.2.3"


def test_the_sync_containers_run_the_projects_image_as_its_user():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    instructions = {line.split()[0]: line.split(None, 1)[1] for line in final_stage if line[:1].isupper()}
    pod = _pod(render.render(loader.load(SYNC_MODE)), "prod", "current")
    assert json.loads(instructions["ENTRYPOINT"]) == pod["containers"][1]["command"]
    assert instructions["USER"] == f"{podparts.RUN_AS}:{podparts.RUN_AS}"


def test_no_sidecar_when_tf_serving_polls_once():
    pod = _pod(render.render(loader.load(SYNC_MODE)), "dev", "current")
    assert [c["name"] for c in pod["initContainers"]] == ["sync-init"]
    assert [c["name"] for c in pod["containers"]] == ["tfserving"]


def test_sync_size_and_resources_come_from_the_catalogue():
    pod = _pod(render.render(loader.load(SYNC_MODE)), "prod", "gpu")
    assert pod["volumes"] == [{"name": "models", "emptyDir": {"sizeLimit": "20Gi"}}]
    assert pod["containers"][1]["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi"},
        "requests": {"cpu": "100m", "memory": "256Mi"},
    }


def test_one_image_for_webhook_and_sidecar():
    model = "  - {name: m, basePath: s3://bkt/m, image: 'tensorflow/serving:2.19.0'}\n"
    cases = {
        "": (default_image(), default_image()),
        "images: {tools: 'r.example/t:1'}\n": ("r.example/t:1", "r.example/t:1"),
        "webhook: {enabled: true, image: 'r.example/w:2'}\n": ("r.example/w:2", "r.example/w:2"),
        "images: {tools: 'r.example/t:1'}\nwebhook: {enabled: true, image: 'r.example/w:2'}\n": (
            "r.example/t:1",
            "r.example/w:2",
        ),
    }
    for extra, (sidecar_image, webhook_image) in cases.items():
        files = render.render(loader.loads(CATALOGUE + model + extra))
        assert _pod(files, "dev", "m")["containers"][1]["image"] == sidecar_image
        if "webhook" in extra:
            deployment = yaml.safe_load(files["dev/_webhook/deployment.yaml"])
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == webhook_image


def test_the_watch_covers_native_models_whose_policy_follows_uploads():
    models = (
        "  - {name: follows, basePath: s3://bkt/f}\n"
        "  - {name: every, servingName: every_version, basePath: s3://bkt/e, versionPolicy: all}\n"
        "  - {name: pinned, basePath: s3://bkt/p, versionPolicy: {specific: [1]}}\n"
        "  - {name: synced, basePath: s3://bkt/s, image: 'tensorflow/serving:2.19.0'}\n"
    )
    files = render.render(loader.loads(CATALOGUE + models))
    config = parse_model_server_config(files["dev/_watch/tfs-watch.models.config"])
    assert [(e.name, e.base_path, str(e.policy)) for e in config] == [
        ("follows", "s3://bkt/f", "latest"),
        ("every_version", "s3://bkt/e", "all"),
    ]
    deployment = yaml.safe_load(files["dev/_watch/deployment-tfs-watch.yaml"])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] + container["args"] == [
        "tfs-gitops", "watch", "--model-config-file", "/etc/tfs-watch/models.config",
    ]  # fmt: skip
    assert "- _watch" in files["dev/kustomization.yaml"]
    assert "_watch.yaml" in files["dev/_argocd/kustomization.yaml"]
    pinned_only = render.render(loader.loads(CATALOGUE + models.splitlines(keepends=True)[2]))
    assert not any(path.startswith("dev/_watch/") for path in pinned_only)


def test_the_prometheus_rule_alerts_on_the_runtime_metrics():
    rule = watch.prometheus_rule(loader.load(SYNC_MODE).environments[0])
    expressions = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert (
        expressions["TFServingNextLoadInvalid"]
        == f'{ModelMetrics.NEXT_LOAD_VALID}{{namespace="tfserving-dev"}} == 0'
    )
    names = set(re.findall(r"tfs_[a-z_]+", " ".join(expressions.values())))
    assert names <= {v for k, v in vars(ModelMetrics).items() if k.isupper()}
