"""Fixtures for the webhook tests: the stand-in Kubernetes API and the webhook under gunicorn over TLS."""

from __future__ import annotations

import pytest

from devtools.kubeapi import FakeKubeAPI
from devtools.webhookserver import ServedWebhook


@pytest.fixture(scope="session")
def fake_kube(tmp_path_factory) -> FakeKubeAPI:
    api = FakeKubeAPI().start()
    api.kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    yield api
    api.stop()


@pytest.fixture(scope="session")
def served(s3_server, fake_kube, tmp_path_factory) -> ServedWebhook:
    """The webhook as deployed: `tfs-gitops webhook serve` (gunicorn, TLS), the real S3 server on the
    allow-list, its own S3 keys, ConfigMaps through the kubeconfig. Caches off, so every admission looks."""
    env = {
        "WEBHOOK_ALLOWED_S3_ENDPOINTS": s3_server.url,
        "WEBHOOK_CACHE_TTL_SECONDS": "0",
        "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": "0",
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "KUBECONFIG": str(fake_kube.kubeconfig),
    }
    hook = ServedWebhook(env, workdir=tmp_path_factory.mktemp("served"))
    hook.start()
    yield hook
    hook.stop()
