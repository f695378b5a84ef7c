"""The catalogue-level comparison, on loaded catalogues (no git, no kubectl)."""

from __future__ import annotations

from pathlib import Path

from generator import loader
from preview import semantic
from preview.changes import ADDED, CHANGED, DISABLED, ENABLED, REMOVED, UNCHANGED, FieldChange, ModelChange

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "preview"
CATALOGUE = (TESTDATA / "models.yaml").read_text()


def load(text: str):
    return loader.loads(text, "models.yaml")


def by_name(previews):
    return {env.name: env for env in previews}


def test_identical_catalogues_have_no_changes():
    previews = semantic.compare(load(CATALOGUE), load(CATALOGUE + "# a comment\n"))
    assert [(env.name, env.change) for env in previews] == [("dev", UNCHANGED), ("prod", UNCHANGED)]


def test_a_defaults_change_reaches_every_deployment_it_resolves_to():
    head = CATALOGUE.replace("  storage:\n", "  replicas: 2\n  storage:\n")
    previews = by_name(semantic.compare(load(CATALOGUE), load(head)))
    for env in ("dev", "prod"):
        assert previews[env].models == (
            ModelChange("half-plus-two", CHANGED, (FieldChange("replicas", "1", "2"),)),
            ModelChange("resnet", CHANGED, (FieldChange("replicas", "1", "2"),)),
        )


def test_moving_a_setting_between_layers_is_no_change():
    head = CATALOGUE.replace("  image: tensorflow/serving:2.6.2\n", "").replace(
        "    basePath: s3://models/tfserving/resnet\n",
        "    basePath: s3://models/tfserving/resnet\n    image: tensorflow/serving:2.6.2\n",
    )
    head = head.replace(
        "    basePath: s3://models/tfserving/half_plus_two\n",
        "    basePath: s3://models/tfserving/half_plus_two\n    image: tensorflow/serving:2.6.2\n",
    )
    assert all(env.change == UNCHANGED for env in semantic.compare(load(CATALOGUE), load(head)))


def test_enabled_disabled_added_removed():
    base = CATALOGUE.replace(
        "    basePath: s3://models/tfserving/resnet\n",
        "    basePath: s3://models/tfserving/resnet\n    environments: {prod: {enabled: false}}\n",
    )
    head = (
        CATALOGUE.replace(
            "  - name: half-plus-two\n    servingName: half_plus_two\n",
            "  - name: half-plus-two\n    servingName: half_plus_two\n"
            "    environments: {dev: {enabled: false}, prod: {versionPolicy: {specific: [123]},"
            " versionLabels: {stable: 123}}}\n",
        ).replace(
            "    environments:\n      prod:\n        versionPolicy: {specific: [123]}\n"
            "        versionLabels: {stable: 123}\n",
            "",
        )
        + "  - name: mnist\n    basePath: s3://models/tfserving/mnist\n    versionLabels: {canary: 7}\n"
        "    versionPolicy: {specific: [7]}\n"
    )
    previews = by_name(semantic.compare(load(base), load(head)))
    assert [(m.model, m.change) for m in previews["dev"].models] == [
        ("half-plus-two", DISABLED),
        ("mnist", ADDED),
    ]
    assert [(m.model, m.change) for m in previews["prod"].models] == [("mnist", ADDED), ("resnet", ENABLED)]
    assert previews["prod"].models[0].fields == (
        FieldChange("basePath", None, "s3://models/tfserving/mnist"),
        FieldChange("versionPolicy", None, "specific [7]"),
        FieldChange("versionLabels.canary", None, "7"),
        FieldChange("image", None, "tensorflow/serving:2.6.2"),
    )
    gone = by_name(semantic.compare(load(head), load(base)))
    assert [(m.model, m.change) for m in gone["dev"].models] == [
        ("half-plus-two", ENABLED),
        ("mnist", REMOVED),
    ]


def test_labels_added_and_removed_keep_their_place():
    head = CATALOGUE.replace("{specific: [123]}", "{specific: [123, 124]}").replace(
        "{stable: 123}", "{canary: 124}"
    )
    prod = by_name(semantic.compare(load(CATALOGUE), load(head)))["prod"]
    assert prod.models[0].fields == (
        FieldChange("versionPolicy", "specific [123]", "specific [123, 124]"),
        FieldChange("versionLabels.stable", "123", None),
        FieldChange("versionLabels.canary", None, "124"),
    )


def test_environment_settings_argo_cd_and_environments_appearing():
    head = CATALOGUE.replace("targetRevision: release", "targetRevision: v2").replace(
        "serving.git", "serving-v2.git"
    )
    head = head.replace("models:\n", "  - name: qa\n    cluster: https://qa.example.internal:6443\nmodels:\n")
    previews = by_name(semantic.compare(load(CATALOGUE), load(head)))
    assert previews["prod"].settings == (
        FieldChange("targetRevision", "release", "v2"),
        FieldChange(
            "argocd.repoURL",
            "https://git.example.com/ml/serving.git",
            "https://git.example.com/ml/serving-v2.git",
        ),
    )
    assert previews["qa"].change == ADDED
    assert previews["qa"].settings == (
        FieldChange("namespace", None, "tfserving-qa"),
        FieldChange("cluster", None, "https://qa.example.internal:6443"),
        FieldChange("targetRevision", None, "HEAD"),
    )
    assert {m.change for m in previews["qa"].models} == {ADDED}
    removed = by_name(semantic.compare(load(head), load(CATALOGUE)))["qa"]
    assert (removed.change, {m.change for m in removed.models}) == (REMOVED, {REMOVED})


def test_webhook_turned_on_then_changed():
    on = CATALOGUE + "webhook:\n  enabled: true\n  environments: [prod]\n"
    previews = by_name(semantic.compare(load(CATALOGUE), load(on)))
    assert previews["prod"].webhook == (FieldChange("webhook", None, "enabled"),)
    assert previews["dev"].change == UNCHANGED
    warn = on + "  onUnverifiable: warn\n  failurePolicy: Ignore\n"
    assert by_name(semantic.compare(load(on), load(warn)))["prod"].webhook == (
        FieldChange("webhook.failurePolicy", "Fail", "Ignore"),
        FieldChange("webhook.onUnverifiable", "deny", "warn"),
    )


def test_what_changes_loading():
    changed = ModelChange("m", CHANGED, (FieldChange("image", "a", "b"),))
    assert not semantic.loads_differently(changed)
    assert semantic.loads_differently(ModelChange("m", CHANGED, (FieldChange("storage.endpoint", "a", "b"),)))
    assert semantic.loads_differently(ModelChange("m", CHANGED, (FieldChange("versionLabels.x", "1", "2"),)))
    assert semantic.loads_differently(ModelChange("m", ENABLED))
    assert not semantic.loads_differently(ModelChange("m", DISABLED))
