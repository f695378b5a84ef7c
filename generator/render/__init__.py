"""Pure rendering: Catalogue → {path relative to the output directory: file text}.

Layout (see docs/generator.md):
    base/, components/gpu/             shared Kustomize parts
    <env>/kustomization.yaml           everything of the environment (models and webhook)
    <env>/<model>/                     one model in one environment (an Argo CD Application's path)
    <env>/_watch/                      `tfs-gitops watch` and its PrometheusRule, when a model needs it
    <env>/_webhook/                    the admission webhook, when enabled for the environment
    <env>/_argocd/                     the environment's Applications (path of its app-of-apps)
    <env>/app-of-apps.yaml             the app-of-apps, applied once by hand to bootstrap
"""

from __future__ import annotations

from generator import webhook_manifests, webhook_wiring
from generator.catalogue import SYNC, Catalogue, Environment
from generator.render import argocd, kubernetes, watch
from generator.render.yamltext import dump, header

WATCH_DIR = "_watch"
WEBHOOK_DIR = "_webhook"
ARGOCD_DIR = "_argocd"


def render(catalogue: Catalogue) -> dict[str, str]:
    source = catalogue.source
    tree: dict[str, str] = {}
    for path, document in kubernetes.base_files().items():
        tree[path] = dump(document, source)
    for environment in catalogue.environments:
        tree.update(_environment_files(catalogue, environment))
    return dict(sorted(tree.items()))


def _environment_files(catalogue: Catalogue, environment: Environment) -> dict[str, str]:
    source = catalogue.source
    env = environment.name
    files: dict[str, str] = {}
    deployments = sorted(catalogue.deployments_in(env), key=lambda d: d.model.name)
    applications: dict[str, dict] = {}
    for deployment in deployments:
        model = deployment.model.name
        synced = deployment.settings.storage.mode == SYNC
        for name, content in kubernetes.model_files(deployment, _tools_image(catalogue, synced)).items():
            text = header(source) + content if isinstance(content, str) else dump(content, source)
            files[f"{env}/{model}/{name}"] = text
        applications[f"{model}.yaml"] = argocd.model_application(catalogue.argocd, environment, model)
    workloads = [deployment.model.name for deployment in deployments]
    watched = bool(watch.watched(catalogue.deployments_in(env)))
    watch_files = watch.files(environment, catalogue.deployments_in(env), _tools_image(catalogue, watched))
    if watch_files is not None:
        for name, content in watch_files.items():
            text = header(source) + content if isinstance(content, str) else dump(content, source)
            files[f"{env}/{WATCH_DIR}/{name}"] = text
        applications[f"{WATCH_DIR}.yaml"] = argocd.watch_application(catalogue.argocd, environment)
        workloads.append(WATCH_DIR)
    webhook = webhook_wiring.render_for(catalogue, environment)
    if webhook is not None:
        for name, document in webhook.files.items():
            files[f"{env}/{WEBHOOK_DIR}/{name}"] = dump(document, source)
        files[f"{env}/{WEBHOOK_DIR}/kustomization.yaml"] = dump(
            kubernetes.kustomization(resources=sorted(webhook.files)), source
        )
        applications[f"{WEBHOOK_DIR}.yaml"] = argocd.webhook_application(
            catalogue.argocd, environment, webhook.namespace, webhook.ignore_differences
        )
        workloads.append(WEBHOOK_DIR)
    files[f"{env}/kustomization.yaml"] = dump(kubernetes.kustomization(resources=workloads), source)
    for name, application in applications.items():
        files[f"{env}/{ARGOCD_DIR}/{name}"] = dump(application, source)
    files[f"{env}/{ARGOCD_DIR}/kustomization.yaml"] = dump(
        kubernetes.kustomization(resources=sorted(applications)), source
    )
    files[f"{env}/app-of-apps.yaml"] = dump(argocd.app_of_apps(catalogue.argocd, environment), source)
    return files


def _tools_image(catalogue: Catalogue, needed: bool) -> str | None:
    """This project's image, when something runs it (the default reads the package version)."""
    if not needed:
        return None
    return catalogue.tools_image or webhook_manifests.default_image()
