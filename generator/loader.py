"""Load models.yaml once: YAML (plain data) → schema pass → rules pass → frozen Catalogue.

Every problem of a pass is reported; the rules that need resolved settings run once the schema pass is clean.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path as FilePath

from generator import catalogue as model
from generator import rules, schema, webhook_wiring
from generator.problems import ERROR, WARNING, CatalogueError, Problem
from generator.yamlsource import MAX_BYTES, Document, parse


def load(path: str | FilePath, display_name: str | None = None) -> model.Catalogue:
    """Raise OSError when the file cannot be read and CatalogueError when it is invalid."""
    path = FilePath(path)
    shown = display_name or str(path)
    with path.open("rb") as stream:
        text = stream.read(MAX_BYTES + 1)
    return loads(text, shown, source_name=path.name)


def loads(text: bytes | str, shown: str = "models.yaml", source_name: str | None = None) -> model.Catalogue:
    document, problems = parse(text)
    if document is None:
        raise CatalogueError(shown, problems)
    problems = schema.check(document) + rules.check_structure(document)
    if problems:
        raise CatalogueError(shown, problems)
    catalogue, problems = resolve(document, source_name or shown)
    errors = [problem for problem in problems if problem.severity == ERROR]
    if errors:
        raise CatalogueError(shown, errors)
    warnings = tuple(sorted({problem for problem in problems if problem.severity == WARNING}))
    return dataclasses.replace(catalogue, warnings=warnings)


def resolve(document: Document, source: str) -> tuple[model.Catalogue, list[Problem]]:
    """The catalogue of a schema-valid document with every setting resolved, and the problems of the rules
    on resolved settings (errors and warnings), reported rather than raised."""
    data = document.data
    environments = tuple(model.build_environment(entry) for entry in data["environments"])
    models = tuple(model.build_model(entry) for entry in data["models"])
    problems: list[Problem] = []
    deployments = []
    for env_index, environment in enumerate(environments):
        for model_index, entry in enumerate(data["models"]):
            specific = entry.get("environments", {}).get(environment.name, {})
            if not specific.get("enabled", True):
                continue
            merged, origins = model.merge_layers(model.settings_layers(data, env_index, model_index))
            settings = model.build_settings(merged)
            problems += rules.check_deployment(settings, origins, document)
            deployments.append(model.Deployment(models[model_index], environment, settings))
    argocd = data["argocd"]
    catalogue = model.Catalogue(
        source=source,
        argocd=model.ArgoCD(
            repo_url=argocd["repoURL"],
            namespace=argocd.get("namespace", "argocd"),
            project=argocd.get("project", "default"),
            path=argocd.get("path", "overlays"),
            path_set="path" in argocd,
        ),
        environments=environments,
        models=models,
        deployments=tuple(deployments),
        webhook=_webhook(data, environments),
    )
    problems += _webhook_problems(catalogue, document)
    return catalogue, problems


def _webhook_problems(catalogue: model.Catalogue, document: Document) -> list[Problem]:
    if catalogue.webhook is None:
        return []
    position = document.position(("webhook",))
    problems = []
    # The webhook validates every TF Serving Deployment of its cluster: two in one cluster would overlap.
    first_on: dict[str, str] = {}
    for environment in catalogue.environments:
        if environment.name not in catalogue.webhook.environments:
            continue
        other = first_on.setdefault(environment.cluster, environment.name)
        if other != environment.name:
            message = (
                f"environments {other!r} and {environment.name!r} both get the webhook in cluster "
                f"{environment.cluster}; it validates every TF Serving Deployment of its cluster, "
                f"so enable it for one of them (webhook.environments) or give them different clusters"
            )
            problems.append(Problem(*position, "$.webhook", message))
    failures: dict[str, list[str]] = {}
    for environment in catalogue.environments:
        try:
            webhook_wiring.settings_for(catalogue, environment)
        except (ValueError, TypeError) as exc:
            failures.setdefault(str(exc), []).append(environment.name)
    for message, environments in failures.items():
        if len(environments) < len(catalogue.webhook.environments):
            message += f" (environments: {', '.join(environments)})"
        problems.append(Problem(*position, "$.webhook", message))
    return problems


def _webhook(data: dict, environments: tuple[model.Environment, ...]) -> model.Webhook | None:
    section = data.get("webhook")
    if not section or not section.get("enabled", False):
        return None
    names = tuple(section.get("environments", [env.name for env in environments]))
    options = tuple(
        (key, tuple(value) if isinstance(value, list) else value)
        for key, value in section.items()
        if key not in ("enabled", "environments")
    )
    return model.Webhook(environments=names, options=options)
