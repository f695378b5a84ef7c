"""Maps the catalogue's `webhook:` section to generator.webhook_manifests' WebhookSettings."""

from __future__ import annotations

from dataclasses import dataclass

from generator import webhook_manifests
from generator.catalogue import Catalogue, Environment
from rulebook.images import ImageRef

# catalogue key → WebhookSettings field
_FIELDS = {
    "namespace": "namespace",
    "image": "image",
    "replicas": "replicas",
    "failurePolicy": "failure_policy",
    "onUnverifiable": "on_unverifiable",
    "timeoutSeconds": "timeout_seconds",
    "allowedS3Endpoints": "allowed_s3_endpoints",
    "defaultS3Endpoint": "default_s3_endpoint",
    "credentialsSecret": "s3_credentials_secret",
    "argocdNamespace": "argocd_namespace",
}


@dataclass(frozen=True)
class RenderedWebhook:
    namespace: str
    files: dict[str, dict]
    ignore_differences: list[dict]


def settings_for(catalogue: Catalogue, environment: Environment):
    """WebhookSettings for this environment, or None when the webhook is not enabled there.

    Raises ValueError for settings it rejects.
    """
    webhook = catalogue.webhook
    if webhook is None or environment.name not in webhook.environments:
        return None
    options = dict(webhook.options)
    kwargs: dict = {"environment": environment.name}
    for key, field in _FIELDS.items():
        if key in options:
            kwargs[field] = options[key]
    deployments = catalogue.deployments_in(environment.name)
    endpoints = sorted({d.settings.storage.endpoint for d in deployments})
    kwargs.setdefault("allowed_s3_endpoints", tuple(endpoints))
    if len(endpoints) == 1:
        kwargs.setdefault("default_s3_endpoint", endpoints[0])
    kwargs.setdefault("argocd_namespace", catalogue.argocd.namespace)
    images = sorted({_repository(d.settings.image) for d in deployments})
    if images:
        kwargs["tfserving_images"] = tuple(images)
    kwargs["allowed_s3_endpoints"] = tuple(kwargs["allowed_s3_endpoints"])
    regions = sorted({d.settings.storage.region for d in deployments})
    if len(regions) == 1:
        kwargs["aws_region"] = regions[0]
    settings = webhook_manifests.WebhookSettings(**kwargs)
    webhook_manifests.validate_settings(settings)
    return settings


def _repository(reference: str) -> str:
    return ImageRef.parse(reference).repository


def render_for(catalogue: Catalogue, environment: Environment) -> RenderedWebhook | None:
    settings = settings_for(catalogue, environment)
    if settings is None:
        return None
    return RenderedWebhook(
        namespace=settings.namespace,
        files=webhook_manifests.render_webhook(settings),
        ignore_differences=webhook_manifests.argocd_ignore_differences(),
    )
