"""Layered settings and the typed, frozen catalogue."""

from __future__ import annotations

import dataclasses

import pytest

from generator import loader
from generator.problems import CatalogueError
from rulebook.s3 import tfserving_env
from tests.generator.goldens import TESTDATA


def deployment(catalogue, env, model):
    return next(d for d in catalogue.deployments if d.environment.name == env and d.model.name == model)


def test_layers_merge_in_order():
    catalogue = loader.load(TESTDATA / "catalogues" / "overrides" / "models.yaml")
    staging = deployment(catalogue, "staging", "scorer").settings
    prod = deployment(catalogue, "prod", "scorer").settings
    assert staging.replicas == 3  # the model beats the environment override
    assert staging.storage.endpoint == "http://rgw.staging.svc:7480" and staging.storage.region == "eu-west-1"
    assert staging.monitoring is False and prod.monitoring is True
    assert dict(prod.resources.requests) == {"cpu": "500m", "memory": "128Mi"}  # merged key by key
    assert dict(prod.resources.limits) == {"cpu": "2", "memory": "2Gi"}
    assert (prod.autoscaling.enabled, prod.autoscaling.min_replicas, prod.autoscaling.max_replicas) == (
        True,
        4,
        10,
    )


def test_defaults_and_derived_values():
    catalogue = loader.load(TESTDATA / "catalogues" / "cpu-only" / "models.yaml")
    env = catalogue.environments[0]
    assert (env.namespace, env.cluster, env.target_revision) == (
        "tfserving-dev",
        "https://kubernetes.default.svc",
        "HEAD",
    )
    settings = catalogue.deployments[0].settings
    assert settings.image == "tensorflow/serving:2.6.2"
    assert tfserving_env(settings.storage.endpoint) == {"S3_ENDPOINT": "s3.example.com", "S3_USE_HTTPS": "1"}
    assert settings.version_policy.kind == "latest" and settings.version_policy.count == 1
    assert catalogue.argocd.path == "overlays"


def test_catalogue_is_frozen():
    catalogue = loader.load(TESTDATA / "catalogues" / "cpu-only" / "models.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.models[0].name = "other"


def test_disabled_model_is_absent_from_that_environment_only():
    catalogue = loader.load(TESTDATA / "catalogues" / "disabled-in-env" / "models.yaml")
    assert [d.model.name for d in catalogue.deployments_in("dev")] == ["stable-model", "experiment"]
    assert [d.model.name for d in catalogue.deployments_in("prod")] == ["stable-model"]


def test_loads_reports_with_the_given_name():
    with pytest.raises(CatalogueError) as caught:
        loader.loads("apiVersion: 1\n", "catalogue.yaml")
    assert caught.value.lines()[0] == "catalogue.yaml:1:1: $: missing required key 'argocd'"


def test_webhook_section_is_wired_per_environment():
    from generator import render

    catalogue = loader.load(TESTDATA / "catalogues" / "disabled-in-env" / "models.yaml")
    assert catalogue.webhook is None
    text = (TESTDATA / "catalogues" / "disabled-in-env" / "models.yaml").read_text()
    enabled = loader.loads(text + "webhook:\n  enabled: true\n  environments: [prod]\n")
    files = render.render(enabled)
    assert "prod/_webhook/kustomization.yaml" in files and "prod/_argocd/_webhook.yaml" in files
    assert not any(path.startswith("dev/_webhook/") for path in files)
    assert "- _webhook\n" in files["prod/kustomization.yaml"]
    assert "http://rgw.storage.svc:7480" in "".join(
        v for k, v in files.items() if k.startswith("prod/_webhook/")
    )
