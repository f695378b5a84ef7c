"""Strict validation of rendered objects, and `kubectl kustomize` of every environment and model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from generator import loader, render, resources, validation
from tests.generator.goldens import TESTDATA

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kubectl


def test_unknown_fields_are_findings():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagee": "i"}]}}},
    }
    findings = validation.validate_object("dev", deployment)
    assert [f.format() for f in findings] == [
        "dev: Deployment n/x: $.spec.template.spec.containers[0]: unknown field: imagee"
    ]


def test_application_checked_against_the_argo_cd_crd_schema():
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "a"},
        "spec": {"project": "p", "destination": {}, "syncPolicy": {"automated": {"purge": True}}},
    }
    findings = validation.validate_object("dev/_argocd", application)
    assert [f.path for f in findings] == ["$.spec.syncPolicy.automated"]
    crd = resources.crd_schema("argoproj.io", "Application", "v1alpha1")
    assert validation.schema_validator("argoproj.io/v1alpha1", "Application").schema == crd


def test_unknown_kinds_and_non_objects_are_findings():
    assert (
        validation.validate_object("t", {"apiVersion": "example.com/v1", "kind": "Gadget"})[0].message
        == "no schema for example.com/v1 Gadget"
    )
    assert validation.validate_object("t", ["x"])[0].message.startswith("not a Kubernetes object")


def test_validators_are_compiled_once_per_kind():
    assert validation.schema_validator("v1", "Service") is validation.schema_validator("v1", "Service")


@pytest.mark.parametrize("case", sorted(p.name for p in (TESTDATA / "catalogues").iterdir()))
def test_golden_catalogues_are_valid(case):
    catalogue = loader.load(TESTDATA / "catalogues" / case / "models.yaml")
    report = validation.validate_tree(
        render.render(catalogue), [e.name for e in catalogue.environments], use="builtin"
    )
    assert [f.format() for f in report.findings] == []


def test_every_environment_and_model_of_the_example_builds():
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl must be on PATH (make install puts it in .venv/bin)"
    overlays = REPO / "overlays"
    targets = [
        path
        for env in ("dev", "staging", "prod")
        for path in [overlays / env, *sorted(p for p in (overlays / env).iterdir() if p.is_dir())]
    ]
    assert len(targets) > 6
    for target in targets:
        completed = subprocess.run([kubectl, "kustomize", str(target)], capture_output=True, text=True)
        assert completed.returncode == 0, f"{target}: {completed.stderr}"
        objects = [doc for doc in yaml.safe_load_all(completed.stdout) if doc]
        findings = [f for doc in objects for f in validation.validate_object(str(target), doc)]
        assert findings == []


def test_broken_kustomization_is_a_finding():
    files = render.render(loader.load(TESTDATA / "catalogues" / "cpu-only" / "models.yaml"))
    files["dev/half-plus-two/kustomization.yaml"] += "resources: [missing.yaml]\n"
    report = validation.validate_tree(files, ["dev"], use="builtin")
    assert report.findings[0].target == "dev"
    assert report.findings[0].message.startswith("kubectl kustomize failed:")


def test_missing_kubectl_is_reported():
    with pytest.raises(validation.ToolMissing):
        validation.validate_tree({}, [], kubectl="no-such-kubectl")


def test_kubeconform_results_become_findings(tmp_path, monkeypatch):
    """kubeconform is not installable here: a stand-in prints its JSON report for one invalid object."""
    report = {
        "resources": [
            {
                "filename": "stdin",
                "kind": "Service",
                "name": "half-plus-two-tfserving",
                "version": "v1",
                "status": "statusValid",
                "msg": "",
            },
            {
                "filename": "stdin",
                "kind": "Deployment",
                "name": "half-plus-two-tfserving",
                "version": "apps/v1",
                "status": "statusInvalid",
                "msg": "problem validating schema",
                "validationErrors": [
                    {"path": "/spec/template/spec/containers/0", "msg": "additional properties 'x'"}
                ],
            },
        ]
    }
    fake = tmp_path / "kubeconform"
    (tmp_path / "report.json").write_text(json.dumps(report))
    fake.write_text(f"#!/bin/sh\ncat >> {tmp_path}/stdin.yaml\ncat {tmp_path}/report.json\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    files = render.render(loader.load(TESTDATA / "catalogues" / "cpu-only" / "models.yaml"))
    result = validation.validate_tree(files, ["dev"], use="kubeconform")
    assert result.validator == "kubeconform"
    assert {f.format() for f in result.findings} == {
        "dev: Deployment half-plus-two-tfserving: $.spec.template.spec.containers[0]: "
        "additional properties 'x'",
        "dev/_argocd: Deployment half-plus-two-tfserving: $.spec.template.spec.containers[0]: "
        "additional properties 'x'",
        "dev/app-of-apps.yaml: Deployment half-plus-two-tfserving: $.spec.template.spec.containers[0]: "
        "additional properties 'x'",
    }
    assert "kind: Deployment" in (tmp_path / "stdin.yaml").read_text()
