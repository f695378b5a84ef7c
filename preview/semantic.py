"""The catalogue-level meaning of a change, per environment: models added, removed, enabled, disabled; each
setting that changed, as the catalogue spells it; the environment's own settings, Argo CD's and the webhook's.

Compares resolved settings (after layering), so a change to `defaults` shows on every deployment it reaches
and a change that resolves to the same values (comments, moving a key between layers) shows nowhere.
"""

from __future__ import annotations

import dataclasses

from generator import webhook_wiring
from generator.catalogue import Catalogue, Deployment, Environment
from preview.changes import (
    ADDED,
    CHANGED,
    DISABLED,
    ENABLED,
    REMOVED,
    UNCHANGED,
    EnvironmentPreview,
    FieldChange,
    ModelChange,
)
from rulebook.policy import VersionPolicy

# Fields shown for a deployment that appears (the rest are in the rendered objects).
ADDED_FIELDS = ("basePath", "versionPolicy", "versionLabels", "image", "resources.gpu")
# Fields shown for an environment, or its webhook, that appears or goes.
HEADLINE_FIELDS = ("namespace", "cluster", "targetRevision", "webhook")
# A change to one of these changes what TF Serving loads, or from where: --verify checks it.
LOADING_FIELDS = ("basePath", "versionPolicy", "versionLabels", "storage")


def compare(base: Catalogue | None, head: Catalogue) -> list[EnvironmentPreview]:
    """One entry per environment of either side: the head's order, then those only the base has."""
    base_envs = {env.name: env for env in base.environments} if base else {}
    head_envs = {env.name: env for env in head.environments}
    base_models = {model.name for model in base.models} if base else set()
    head_models = {model.name for model in head.models}
    previews = []
    for name in [*head_envs, *(name for name in base_envs if name not in head_envs)]:
        before, after = base_envs.get(name), head_envs.get(name)
        models = _model_changes(
            _deployments(base, name),
            _deployments(head, name),
            base_models,
            head_models,
            whole=before is None or after is None,
        )
        if after is None:
            previews.append(EnvironmentPreview(name, REMOVED, models=models))
            continue
        settings = _changes(*_comparable(_environment_fields(base, before), _environment_fields(head, after)))
        webhook = _changes(*_comparable(_webhook_fields(base, before), _webhook_fields(head, after)))
        change = ADDED if before is None else (CHANGED if settings or models or webhook else UNCHANGED)
        previews.append(EnvironmentPreview(name, change, settings, models, webhook))
    return previews


def loads_differently(change: ModelChange) -> bool:
    """Whether TF Serving loads other versions, or from elsewhere, after this change."""
    if change.change in (ADDED, ENABLED):
        return True
    return change.change == CHANGED and any(_in(field.field, LOADING_FIELDS) for field in change.fields)


def _deployments(catalogue: Catalogue | None, environment: str) -> dict[str, Deployment]:
    if catalogue is None:
        return {}
    return {d.model.name: d for d in catalogue.deployments_in(environment)}


def _model_changes(
    before: dict[str, Deployment],
    after: dict[str, Deployment],
    base_models: set[str],
    head_models: set[str],
    *,
    whole: bool,  # the environment itself appears or goes
) -> tuple[ModelChange, ...]:
    changes = []
    for model in sorted(before.keys() | after.keys()):
        old, new = before.get(model), after.get(model)
        if old is None:
            appeared = ADDED if whole or model not in base_models else ENABLED
            fields = deployment_fields(new)
            shown = {key: value for key, value in fields.items() if _in(key, ADDED_FIELDS)}
            if shown.get("resources.gpu") == "0":
                del shown["resources.gpu"]
            changes.append(ModelChange(model, appeared, _changes({}, shown)))
        elif new is None:
            gone = REMOVED if whole or model not in head_models else DISABLED
            changes.append(ModelChange(model, gone))
        elif old != new:
            fields = _changes(deployment_fields(old), deployment_fields(new))
            if fields:
                changes.append(ModelChange(model, CHANGED, fields))
    return tuple(changes)


def deployment_fields(deployment: Deployment) -> dict[str, str]:
    """Every resolved setting of a deployment, flattened, in the catalogue's spelling."""
    settings = deployment.settings
    fields = {
        "basePath": deployment.model.base_path,
        "servingName": deployment.model.serving_name,
        "versionPolicy": policy_text(settings.version_policy),
    }
    fields.update({f"versionLabels.{label}": str(version) for label, version in settings.version_labels})
    fields["image"] = settings.image
    fields["replicas"] = str(settings.replicas)
    resources = settings.resources
    fields.update({f"resources.requests.{name}": value for name, value in resources.requests})
    fields.update({f"resources.limits.{name}": value for name, value in resources.limits})
    fields["resources.gpu"] = str(resources.gpu)
    storage = settings.storage
    fields["storage.endpoint"] = storage.endpoint
    fields["storage.region"] = storage.region
    fields["storage.verifySsl"] = _text(storage.verify_ssl)
    fields["storage.credentialsSecret"] = storage.credentials_secret
    fields["tfserving.fileSystemPollWaitSeconds"] = str(settings.poll_wait_seconds)
    fields["monitoring.enabled"] = _text(settings.monitoring)
    batching = settings.batching
    fields["batching.enabled"] = _text(batching.enabled)
    fields["batching.maxBatchSize"] = str(batching.max_batch_size)
    fields["batching.batchTimeoutMicros"] = str(batching.batch_timeout_micros)
    fields["batching.maxEnqueuedBatches"] = str(batching.max_enqueued_batches)
    fields["batching.numBatchThreads"] = str(batching.num_batch_threads)
    scaling = settings.autoscaling
    fields["autoscaling.enabled"] = _text(scaling.enabled)
    fields["autoscaling.minReplicas"] = str(scaling.min_replicas)
    fields["autoscaling.maxReplicas"] = str(scaling.max_replicas)
    fields["autoscaling.targetCPUUtilizationPercentage"] = str(scaling.target_cpu_utilization)
    return fields


def policy_text(policy: VersionPolicy) -> str:
    if policy.kind == "specific":
        return f"specific [{', '.join(str(v) for v in policy.versions)}]"
    if policy.kind == "latest" and policy.count > 1:
        return f"latest {policy.count}"
    return policy.kind


def _environment_fields(catalogue: Catalogue | None, environment: Environment | None) -> dict[str, str]:
    if catalogue is None or environment is None:
        return {}
    argocd = catalogue.argocd
    return {
        "namespace": environment.namespace,
        "cluster": environment.cluster,
        "targetRevision": environment.target_revision,
        "argocd.repoURL": argocd.repo_url,
        "argocd.namespace": argocd.namespace,
        "argocd.project": argocd.project,
        "argocd.path": argocd.path,
    }


def _webhook_fields(catalogue: Catalogue | None, environment: Environment | None) -> dict[str, str]:
    """The webhook's settings in this environment as rendered (derived values included); {} when off."""
    if catalogue is None or environment is None:
        return {}
    settings = webhook_wiring.settings_for(catalogue, environment)
    if settings is None:
        return {}
    fields = {"webhook": "enabled"}
    for field in dataclasses.fields(settings):
        if field.name != "environment":
            fields[f"webhook.{_camel(field.name)}"] = _text(getattr(settings, field.name))
    return fields


def _comparable(before: dict[str, str], after: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """When one side is missing (an environment or the webhook appears or goes), only the headline fields:
    the rest is in the rendered objects."""
    if before and after:
        return before, after
    return _headline(before), _headline(after)


def _headline(fields: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in fields.items() if key in HEADLINE_FIELDS}


def _changes(before: dict[str, str], after: dict[str, str]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(key, before.get(key), after.get(key))
        for key in _union(list(before), list(after))
        if before.get(key) != after.get(key)
    )


def _union(first: list[str], second: list[str]) -> list[str]:
    """The keys of both, each side's order kept: a key only `first` has goes after its predecessor there."""
    result = list(second)
    for index, key in enumerate(first):
        if key in result:
            continue
        previous = [result.index(k) + 1 for k in first[:index] if k in result]
        result.insert(max(previous, default=0), key)
    return result


def _in(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in prefixes)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _text(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ", ".join(_text(item) for item in value) or "(none)"
    return str(value)
