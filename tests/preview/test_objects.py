"""The rendered comparison: building only the changed units, in batches, gives what building each whole
environment gives (kubectl kustomize overlays/<env>, its _argocd/ and app-of-apps.yaml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from generator import loader, render, tree
from generator.render import kubernetes
from preview import objects
from preview.changes import ADDED, CHANGED, REMOVED

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "tests" / "testdata" / "preview"
pytestmark = pytest.mark.kubectl


def side(text: str) -> tuple[objects.Side, list[str]]:
    catalogue = loader.loads(text, "models.yaml")
    return objects.Side(render.render(catalogue), "overlays"), [env.name for env in catalogue.environments]


def whole_environment(files: dict[str, str], root: Path, environment: str) -> dict[tuple, dict]:
    tree.write(files, root)
    texts = [
        subprocess.run(
            ["kubectl", "kustomize", str(root / target)], capture_output=True, text=True, check=True
        ).stdout
        for target in (environment, f"{environment}/_argocd")
    ]
    texts.append((root / environment / "app-of-apps.yaml").read_text())
    found = {}
    for text in texts:
        for document in yaml.safe_load_all(text):
            if document:
                metadata = document["metadata"]
                found[(document["kind"], metadata.get("namespace"), metadata["name"])] = document
    return found


@pytest.mark.parametrize("batch", [1, 2, objects.BATCH])
def test_units_built_in_batches_equal_whole_environments(tmp_path: Path, monkeypatch, batch: int):
    """The repository's own catalogue: two models, a GPU component, the webhook, three environments."""
    monkeypatch.setattr(objects, "BATCH", batch)
    head, environments = side((REPO / "models.yaml").read_text())
    comparison = objects.compare(None, head, environments)
    assert comparison.errors == {}
    for environment in environments:
        changes = comparison.objects[environment]
        assert {change.change for change in changes} == {ADDED}
        shown = {(c.kind, c.namespace, c.name) for c in changes}
        whole = whole_environment(head.files, tmp_path / "whole", environment)
        assert shown == set(whole), environment
        for change in changes:  # the diff of an added object is the object
            document = yaml.safe_load("\n".join(line[1:] for line in change.diff[3:]))
            assert document == whole[(change.kind, change.namespace, change.name)]


def test_only_changed_units_are_built():
    base, environments = side((TESTDATA / "models.yaml").read_text())
    text = (TESTDATA / "models.yaml").read_text().replace("{specific: [123]}", "{specific: [123, 124]}")
    head, _ = side(text)
    comparison = objects.compare(base, head, environments)
    assert comparison.built == 2  # prod/half-plus-two, once per side
    assert [(c.kind, c.change, c.before_name is not None) for c in comparison.objects["prod"]] == [
        ("Deployment", CHANGED, False),
        ("ConfigMap", CHANGED, True),  # its hash suffix changed: one object, not one removed and one added
    ]
    assert "dev" not in comparison.objects
    assert objects.compare(base, base, environments) == objects.Comparison({}, {}, 0)


def test_a_change_to_the_shared_base_rebuilds_every_model(monkeypatch):
    base, environments = side((TESTDATA / "models.yaml").read_text())
    files = dict(base.files)
    shared = kubernetes.base_files()["base/service.yaml"]
    shared["spec"]["ports"][0]["name"] = "grpc-api"
    files["base/service.yaml"] = render.yamltext.dump(shared, "models.yaml")
    comparison = objects.compare(base, objects.Side(files, "overlays"), environments)
    assert comparison.built == 4  # two environments × one batch of two models, per side
    services = [c.name for env in environments for c in comparison.objects[env] if c.kind == "Service"]
    assert services == ["half-plus-two-tfserving", "resnet-tfserving"] * 2


def test_build_failures_are_reported_per_environment():
    base, environments = side((TESTDATA / "models.yaml").read_text())
    files = dict(base.files)
    files["prod/resnet/kustomization.yaml"] += "resources: [missing.yaml]\n"
    comparison = objects.compare(base, objects.Side(files, "overlays"), environments)
    assert list(comparison.errors) == ["prod"]
    assert comparison.errors["prod"][0].startswith("head: kubectl kustomize failed: ")


def test_removed_and_added_objects():
    old = {("Service", "ns", "a"): {"kind": "Service", "metadata": {"name": "a"}}}
    new = {("Service", "ns", "b"): {"kind": "Service", "metadata": {"name": "b"}}}
    changes = objects._object_changes(old, new, ("overlays/dev", "overlays/dev"))
    assert [(c.name, c.change, c.diff[:2]) for c in changes] == [
        ("a", REMOVED, ("--- overlays/dev: Service ns/a", "+++ /dev/null")),
        ("b", ADDED, ("--- /dev/null", "+++ overlays/dev: Service ns/b")),
    ]
