"""Argo CD Applications: one per (environment, model), one for the webhook, one app-of-apps per environment.

Names: the app-of-apps is `<env>`, a model's Application `<env>.<model>`, the webhook's `<env>.tfs-webhook`,
the watch's `<env>.tfs-watch` (model and environment names are DNS labels without dots, and `tfs-webhook`
and `tfs-watch` are reserved model names, so these never collide).
"""

from __future__ import annotations

from generator.catalogue import ArgoCD, Environment
from rulebook.names import WATCH_APP, WEBHOOK_APP

ARGOCD_API = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
RETRY = {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}


def _sync_policy() -> dict:
    return {
        "automated": {"prune": True, "selfHeal": True},
        "syncOptions": ["CreateNamespace=true"],
        "retry": RETRY,
    }


def _application(
    argocd: ArgoCD,
    environment: Environment,
    name: str,
    path: str,
    server: str,
    namespace: str,
    *,
    finalizer: bool,
) -> dict:
    metadata: dict = {
        "name": name,
        "namespace": argocd.namespace,
        "labels": {
            "app.kubernetes.io/part-of": "tfserving-gitops",
            "app.kubernetes.io/managed-by": "tfs-gitops",
            "tfs-gitops/environment": environment.name,
        },
    }
    if finalizer:
        # Deleting the Application (a model removed from the catalogue) deletes what it deployed.
        # Foreground cascading deletion, as the bare name means, but domain-qualified with a path: the API
        # server warns about the bare name (found by the e2e tests against kube-apiserver 1.37).
        metadata["finalizers"] = ["resources-finalizer.argocd.argoproj.io/foreground"]
    return {
        "apiVersion": ARGOCD_API,
        "kind": "Application",
        "metadata": metadata,
        "spec": {
            "project": argocd.project,
            "source": {
                "repoURL": argocd.repo_url,
                "targetRevision": environment.target_revision,
                "path": path,
            },
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": _sync_policy(),
        },
    }


def model_application(argocd: ArgoCD, environment: Environment, model: str) -> dict:
    return _application(
        argocd,
        environment,
        f"{environment.name}.{model}",
        f"{argocd.path}/{environment.name}/{model}",
        environment.cluster,
        environment.namespace,
        finalizer=True,
    )


def webhook_application(
    argocd: ArgoCD, environment: Environment, namespace: str, ignore_differences: list[dict]
) -> dict:
    app = _application(
        argocd,
        environment,
        f"{environment.name}.{WEBHOOK_APP}",
        f"{argocd.path}/{environment.name}/_webhook",
        environment.cluster,
        namespace,
        finalizer=True,
    )
    if ignore_differences:
        app["spec"]["ignoreDifferences"] = ignore_differences
        app["spec"]["syncPolicy"]["syncOptions"].append("RespectIgnoreDifferences=true")
    return app


def watch_application(argocd: ArgoCD, environment: Environment) -> dict:
    return _application(
        argocd,
        environment,
        f"{environment.name}.{WATCH_APP}",
        f"{argocd.path}/{environment.name}/_watch",
        environment.cluster,
        environment.namespace,
        finalizer=True,
    )


def app_of_apps(argocd: ArgoCD, environment: Environment) -> dict:
    """Applications are objects in Argo CD's own cluster and namespace, whatever the environment's cluster."""
    return _application(
        argocd,
        environment,
        environment.name,
        f"{argocd.path}/{environment.name}/_argocd",
        IN_CLUSTER,
        argocd.namespace,
        finalizer=False,
    )
