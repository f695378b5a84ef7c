"""The promise: if `tfs-gitops validate` passes, Argo CD's sync is admitted (given complete models in S3).

Catalogues are generated (images from a corpus of real tags and registries, GPU counts, version policies,
labels), rendered, built with `kubectl kustomize`, and every Deployment is posted to the webhook app, which
checks a real S3 server holding complete versions 1–4 of every model. For every model:
- validate reports no error and no warning for it  ⇒  the webhook admits it;
- the webhook denies it  ⇒  validate refused the catalogue with a `file:line:col` error for that model, or
  warned about a version label that only S3 can decide — and then `verify` of the catalogue refuses it too.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devtools.admission import build_review
from generator import loader, render, rules, schema, tree, yamlsource
from rulebook.images import ImageRef
from webhook.app import create_app
from webhook.config import WebhookConfig

pytestmark = [pytest.mark.s3, pytest.mark.kubectl]

MODEL_SRC = (
    Path(__file__).resolve().parents[1]
    / "testdata"
    / "savedmodels"
    / "saved_model_half_plus_two_cpu"
    / "00000123"
)
VERSIONS = (1, 2, 3, 4)  # complete in S3 for every model
MODELS = 3
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGES = (
    "tensorflow/serving:2.6.2",
    "tensorflow/serving:2.6.2-gpu",
    "tensorflow/serving:2.6.5",
    "tensorflow/serving:2.6.2-GPU",
    "tensorflow/serving:1.15.0-gpu",
    "docker.io/tensorflow/serving:2.5.1",
    "docker.io/tensorflow/serving:2.5.1-gpu",
    "index.docker.io/tensorflow/serving:2.6.0",
    "registry-1.docker.io/tensorflow/serving:2.6.2-gpu",
    "registry-1.docker.io/tensorflow/serving:2.14.1",
    "tensorflow/serving:2.7.0",
    "tensorflow/serving:2.19.0-gpu",
    "tensorflow/serving:latest",
    "tensorflow/serving:nightly",
    "tensorflow/serving",
    f"tensorflow/serving@{DIGEST}",
    f"tensorflow/serving:2.6.2@{DIGEST}",
    f"tensorflow/serving:2.6.2-gpu@{DIGEST}",
    "ghcr.io/acme/tf-serving-s3:2.19.0",
    "ghcr.io/acme/tf-serving-s3:2.19.0-gpu",
    "registry.example.com:5000/ml/tfs:2.15.1-GPU",
)
POLICIES = ("latest", {"latest": 2}, "all", {"specific": [1]}, {"specific": [2, 4]}, {"specific": [1, 2, 3]})
FILE_LINE_COL = re.compile(r"^models\.yaml:\d+:\d+: \$\S*: ")


@pytest.fixture(scope="module")
def world(s3_server, tmp_path_factory):
    """A bucket holding complete versions 1–4 of m0…m2, and the webhook app checking it."""
    client = s3_server.client()
    bucket = "agreement-" + tmp_path_factory.getbasetemp().name[-8:].lower().replace("_", "-")
    client.create_bucket(Bucket=bucket)
    for index in range(MODELS):
        for version in VERSIONS:
            for path in sorted(p for p in MODEL_SRC.rglob("*") if p.is_file()):
                key = f"m{index}/{version:08d}/{path.relative_to(MODEL_SRC).as_posix()}"
                client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return {"endpoint": s3_server, "bucket": bucket, "workdir": tmp_path_factory.mktemp("agreement")}


def catalogue_text(world, models: list[dict]) -> str:
    data = {
        "apiVersion": "tfs-gitops/v1alpha1",
        "argocd": {"repoURL": "https://example.com/repo.git"},
        "defaults": {"storage": {"endpoint": world["endpoint"].url}},
        "environments": [{"name": "dev"}],
        "models": [
            {"name": f"m{index}", "basePath": f"s3://{world['bucket']}/m{index}", **copy.deepcopy(settings)}
            for index, settings in enumerate(models)
        ],
    }
    return yaml.safe_dump(data, sort_keys=False)


model_settings = st.fixed_dictionaries(
    {"image": st.sampled_from(IMAGES)},
    optional={
        "resources": st.sampled_from([{"gpu": 0}, {"gpu": 1}, {"gpu": 2}]),
        "versionPolicy": st.sampled_from(POLICIES),
        "versionLabels": st.sampled_from(
            [{"stable": 1}, {"stable": 2}, {"stable": 4}, {"stable": 2, "canary": 4}]
        ),
    },
)


def resolve(text: str):
    """validate's verdict on the catalogue (errors and warnings) and the catalogue as resolved regardless."""
    document, problems = yamlsource.parse(text)
    assert document is not None and not problems
    assert schema.check(document) + rules.check_structure(document) == []  # the strategies stay schema-valid
    return loader.resolve(document, "models.yaml")


def admissions(world, catalogue) -> dict[str, dict]:
    """The webhook's answer for each model's rendered Deployment, keyed by model name."""
    out = world["workdir"] / "overlays"
    tree.write(render.render(catalogue), out)
    built = subprocess.run(
        ["kubectl", "kustomize", str(out / "dev")], capture_output=True, text=True, check=True
    )
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    images = sorted({ImageRef.parse(d.settings.image).repository for d in catalogue.deployments})
    config = WebhookConfig.from_env(
        {"WEBHOOK_ALLOWED_S3_ENDPOINTS": world["endpoint"].url, "WEBHOOK_TFSERVING_IMAGES": ",".join(images)}
    )
    app = create_app(
        config, read_configmap=lambda namespace, name, deadline: configmaps.get(name)
    ).test_client()
    answers = {}
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        model = deployment["metadata"]["name"].removesuffix("-tfserving")
        answers[model] = app.post("/validate?timeout=10s", json=build_review(deployment)).get_json()[
            "response"
        ]
    return answers


def for_model(problems, index: int) -> list:
    return [p for p in problems if p.path.startswith(f"$.models[{index}]")]


def check_agreement(world, models: list[dict], s3_env) -> None:
    text = catalogue_text(world, models)
    catalogue, problems = resolve(text)
    answers = admissions(world, catalogue)
    for index in range(len(models)):
        mine = for_model(problems, index)
        errors = [p for p in mine if p.severity == "error"]
        answer = answers[f"m{index}"]
        found = [p.format("models.yaml") for p in mine]
        where = f"model m{index} {models[index]}: validate {found}, webhook {answer}"
        if not mine:
            assert answer["allowed"] is True, where
        if not answer["allowed"]:
            assert mine, where
            if not errors:  # only a warning: a version label S3 decides — verify must refuse it
                assert all("versionLabels" in p.path for p in mine), where
                if not any(p.severity == "error" for p in problems):  # else CI stops at validate already
                    assert verify_refuses(world, text, index), where
    for problem in problems:
        assert FILE_LINE_COL.match(problem.format("models.yaml")), problem


def verify_refuses(world, text: str, index: int) -> bool:
    from click.testing import CliRunner

    from tfs_gitops.cli import main

    path = world["workdir"] / "models.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["verify", "-c", str(path), "-o", "json"])
    reports = {r["model"]: r for r in json.loads(result.stdout)["results"]}
    return reports[f"m{index}"]["verdict"] == "invalid"


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(model_settings, min_size=MODELS, max_size=MODELS))
@example(
    [
        {"image": "tensorflow/serving:2.6.2-gpu"},
        {"image": "registry-1.docker.io/tensorflow/serving:2.14.1"},
        {"image": "tensorflow/serving:2.6.2-GPU", "resources": {"gpu": 1}},
    ]
)
@example(
    [
        {"image": "tensorflow/serving:2.6.2", "versionLabels": {"stable": 2}},
        {"image": "tensorflow/serving:2.6.2", "versionPolicy": {"latest": 2}, "versionLabels": {"stable": 1}},
        {"image": "tensorflow/serving:2.6.2", "versionPolicy": "all", "versionLabels": {"stable": 1}},
    ]
)
def test_validate_and_admission_agree(world, s3_env, models):
    check_agreement(world, models, s3_env)


# --- the four disagreements found by hand, each pinned ---------------------------------------------------


def verdicts(world, models: list[dict]):
    catalogue, problems = resolve(catalogue_text(world, models))
    return [p.format("models.yaml") for p in problems], admissions(world, catalogue)["m0"]


def test_gpu_image_without_a_gpu_is_refused_by_both(world, s3_env):
    problems, answer = verdicts(world, [{"image": "tensorflow/serving:2.6.2-gpu"}])
    assert problems == [
        "models.yaml:12:10: $.models[0].image: tensorflow/serving:2.6.2-gpu is a GPU image but the model "
        "has no GPU: set resources.gpu to 1 or more, or use the CPU image tensorflow/serving:2.6.2"
    ]
    assert answer["allowed"] is False and answer["status"]["message"].startswith(
        'gpu-image: container "tfserving" runs the GPU image tensorflow/serving:2.6.2-gpu without a GPU'
    )


def test_registry_1_docker_io_is_docker_hub_for_both(world, s3_env):
    problems, answer = verdicts(world, [{"image": "registry-1.docker.io/tensorflow/serving:2.14.1"}])
    assert len(problems) == 1 and "cannot read s3:// model paths" in problems[0]
    assert answer["allowed"] is False and answer["status"]["message"].startswith("s3-support: ")


def test_upper_case_gpu_tag_is_a_gpu_image_for_both(world, s3_env):
    problems, answer = verdicts(world, [{"image": "tensorflow/serving:2.6.2-GPU", "resources": {"gpu": 1}}])
    assert problems == [] and answer["allowed"] is True


def test_a_label_under_latest_is_refused_by_validate(world, s3_env):
    problems, answer = verdicts(
        world, [{"image": "tensorflow/serving:2.6.2", "versionLabels": {"stable": 3}}]
    )
    assert problems == [
        "models.yaml:14:13: $.models[0].versionLabels.stable: label 'stable' points at version 3, but the "
        "latest policy loads one version: the label is right only until the next upload, then TF Serving "
        "refuses the config; pin versions with versionPolicy {specific: [3]}"
    ]
    assert answer["allowed"] is False  # S3 holds 4 above 3: TF Serving would load 4 and refuse the label
