"""AdmissionReviews as the API server sends them, and what kubectl prints for the answers (tests, bench).

The real API server's requests are pinned in tests/testdata/admission/ (and, with the e2e pass, received from
a real kube-apiserver); this builder makes the same shape for a Deployment we render.
"""

from __future__ import annotations

import uuid

from webhook.admission import API_VERSION


def build_review(
    deployment: dict,
    *,
    operation: str = "CREATE",
    namespace: str | None = None,
    old: dict | None = None,
    dry_run: bool = False,
    uid: str | None = None,
    username: str = "kubernetes-admin",
) -> dict:
    """An admission.k8s.io/v1 AdmissionReview as the API server sends it for an apps/v1 Deployment."""
    metadata = deployment.get("metadata") or {}
    namespace = namespace or metadata.get("namespace") or "default"
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    gvr = {"group": "apps", "version": "v1", "resource": "deployments"}
    options: dict = {
        "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
        "apiVersion": "meta.k8s.io/v1",
    }
    if dry_run:
        options["dryRun"] = ["All"]  # the API server repeats the request's dry-run option here
    return {
        "kind": "AdmissionReview",
        "apiVersion": API_VERSION,
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": metadata.get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": username, "groups": ["system:masters", "system:authenticated"]},
            "object": deployment,
            "oldObject": old,
            "dryRun": dry_run,
            "options": options,
        },
    }


def kubectl_denial(webhook_name: str, message: str, source: str = "STDIN") -> str:
    """The line `kubectl apply -f -` prints when the webhook denies the object."""
    return (
        f'Error from server: error when creating "{source}": admission webhook "{webhook_name}" '
        f"denied the request: {message}"
    )


def kubectl_output(review_response: dict, deployment: dict, webhook_name: str, source: str = "STDIN") -> str:
    """What `kubectl apply -f -` prints for a Deployment given the webhook's AdmissionReview response:
    `Warning: ...` lines, then `deployment.apps/NAME created` or the `Error from server: ...` line."""
    response = review_response.get("response", review_response)
    lines = [f"Warning: {text}" for text in response.get("warnings", [])]
    name = (deployment.get("metadata") or {}).get("name", "")
    if response.get("allowed"):
        lines.append(f"deployment.apps/{name} created")
    else:
        lines.append(kubectl_denial(webhook_name, (response.get("status") or {}).get("message", ""), source))
    return "\n".join(lines)
