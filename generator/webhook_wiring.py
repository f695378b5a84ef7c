"""Maps the catalogue's `webhook:` section to generator.webhook_manifests (written separately).

The manifests module may be absent in a partial checkout; then a catalogue enabling the webhook is refused
with a clear problem instead of failing at render time.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass

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


def manifests_module():
    """generator.webhook_manifests, or None when it is not built yet."""
    try:
        return importlib.import_module("generator.webhook_manifests")
    except ModuleNotFoundError as exc:
        if exc.name != "generator.webhook_manifests":
            raise
        return None


def settings_for(catalogue: Catalogue, environment: Environment):
    """WebhookSettings for this environment, or None when the webhook is not enabled there.

    Raises LookupError when the manifests module is missing and ValueError for settings it rejects.
    """
    webhook = catalogue.webhook
    if webhook is None or environment.name not in webhook.environments:
        return None
    module = manifests_module()
    if module is None:
        raise LookupError("the webhook is enabled but generator/webhook_manifests.py is not available")
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
    known = {field.name for field in dataclasses.fields(module.WebhookSettings)}
    if len(regions) == 1 and "aws_region" in known:
        kwargs["aws_region"] = regions[0]
    settings = module.WebhookSettings(**kwargs)
    validate = getattr(module, "validate_settings", None)
    if validate is not None:
        validate(settings)
    return settings


def _repository(reference: str) -> str:
    return ImageRef.parse(reference).repository


def render_for(catalogue: Catalogue, environment: Environment) -> RenderedWebhook | None:
    settings = settings_for(catalogue, environment)
    if settings is None:
        return None
    module = manifests_module()
    return RenderedWebhook(
        namespace=settings.namespace,
        files=module.render_webhook(settings),
        ignore_differences=module.argocd_ignore_differences(),
    )
