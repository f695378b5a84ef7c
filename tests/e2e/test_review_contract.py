"""What a real kube-apiserver sends the webhook, compared with our own AdmissionReview builder.

The unit and served-webhook tests (tests/webhook), the bench and the fallback demo post reviews made by
`webhook.admission.build_review`. Here the API server's own reviews — recorded by a second webhook registered
with the same rules, selectors and matchConditions — are compared with what `build_review` makes for the
same Deployment, field by field; every difference is listed below (and in docs/e2e.md), and the webhook
must decide both the same way.
"""

from __future__ import annotations

import copy
import re

import pytest

from devtools.admission import build_review
from tests.e2e.conftest import deployment_of
from tests.e2e.test_admission import MODEL, NAME

pytestmark = pytest.mark.e2e

# The request envelope (everything but object/oldObject): where the API server's review differs from ours.
# `uid` differs by design (random per request) and is not listed.
ENVELOPE_DIFFERENCES = {
    # The authenticated user: ours is a fixed kubeadm-like admin; the real one is whoever ran kubectl, with
    # the authenticator's `extra` (here the client certificate's fingerprint).
    "request.userInfo.username: value differs",
    "request.userInfo.extra: only the API server's",
    # Set by the client (kubectl apply): which field manager, and strict server-side field validation.
    "request.options.fieldManager: only the API server's",
    "request.options.fieldValidation: only the API server's",
}

# Fields of the object that the API server fills in before validating admission (defaulting, and the
# metadata it stamps on create/update) and that a rendered manifest does not have. Paths use [] for any
# list index.
SERVER_POPULATED = re.compile(
    r"^("
    r"status"
    r"|metadata\.(uid|generation|creationTimestamp|resourceVersion|annotations)"
    r"|metadata\.managedFields\[\]\..*"  # who set which field (server-side apply bookkeeping)
    r"|metadata\.annotations\.kubectl\.kubernetes\.io/last-applied-configuration"  # kubectl apply's own
    r"|spec\.(replicas|progressDeadlineSeconds|strategy|strategy\..*)"
    r"|spec\.template\.spec\.(restartPolicy|terminationGracePeriodSeconds|dnsPolicy|schedulerName)"
    r"|spec\.template\.spec\.volumes\[\]\.configMap\.defaultMode"
    r"|spec\.template\.spec\.containers\[\]\.(terminationMessagePath|terminationMessagePolicy|imagePullPolicy)"
    r"|spec\.template\.spec\.containers\[\]\.(livenessProbe|readinessProbe|startupProbe)"
    r"\.(timeoutSeconds|successThreshold|httpGet\.scheme)"
    r")$"
)


def flatten(value, path: str = "") -> dict[str, object]:
    """{dotted path: leaf}; list items are keyed by their `name` when they have one, else by index."""
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{path}.{key}" if path else key))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            key = item.get("name", index) if isinstance(item, dict) else index
            out.update(flatten(item, f"{path}[{key}]"))
        return out
    return {path: value}


def envelope_differences(real: dict, ours: dict) -> set[str]:
    def envelope(review: dict) -> dict:
        review = copy.deepcopy(review)
        review["request"].pop("object")
        review["request"].pop("oldObject")
        review["request"].pop("uid")
        return flatten(review)

    real_paths, our_paths = envelope(real), envelope(ours)
    found = set()
    for path in real_paths.keys() | our_paths.keys():
        top = re.sub(r"^(request\.userInfo\.extra|request\.userInfo\.groups)\b.*", r"\1", path)
        if path not in our_paths:
            found.add(f"{top}: only the API server's")
        elif path not in real_paths:
            found.add(f"{top}: only ours")
        elif real_paths[path] != our_paths[path]:
            found.add(f"{top}: value differs")
    return found


def object_differences(real: dict, ours: dict) -> tuple[set[str], set[str]]:
    """(paths the API server added, paths where ours differs or the API server lacks)."""
    real_paths, our_paths = flatten(real), flatten(ours)
    added = {re.sub(r"\[[^\]]*\]", "[]", path) for path in real_paths.keys() - our_paths.keys()}
    # A path ours has as an empty container may be filled in by the API server (annotations: {}).
    conflicting = {path for path in our_paths if path in real_paths and real_paths[path] != our_paths[path]}
    missing = {path for path in our_paths.keys() - real_paths.keys()
               if not any(other.startswith(path) for other in real_paths)}
    return added, conflicting | missing


def verdict(e2e, review: dict, path: str) -> dict:
    status, body = e2e.webhook.post(review, path=path)
    assert status == 200, body
    response = body["response"]
    return {key: response.get(key) for key in ("allowed", "status", "warnings")}


def recorded(e2e, namespace: str, operation: str, dry_run: bool):
    found = [r for r in e2e.recorder.for_object(namespace, NAME)
             if r.review["request"]["operation"] == operation and r.review["request"]["dryRun"] is dry_run]
    assert found, f"the API server sent no {operation} (dryRun={dry_run}) for {namespace}/{NAME}"
    return found[-1]


@pytest.fixture(scope="module")
def cases(e2e):
    """(what the API server sent, what build_review makes of the same manifests), for CREATE, an UPDATE
    through `kubectl apply` (a patch), a server dry run, and a denied CREATE."""
    for namespace in ("tfserving-prod", "tfserving-staging"):
        e2e.kubectl("delete", "deployment", NAME, "-n", namespace, "--ignore-not-found", check=True)
    prod = e2e.rendered("prod", MODEL)
    created = copy.deepcopy(deployment_of(prod))
    assert e2e.apply(prod).returncode == 0
    deployment_of(prod)["spec"]["replicas"] = 2
    scaled = copy.deepcopy(deployment_of(prod))
    assert e2e.apply(prod).returncode == 0
    staging = e2e.rendered("staging", MODEL)
    assert e2e.apply(staging, "--dry-run=server").returncode == 1
    assert e2e.apply(staging).returncode == 1
    staged = deployment_of(staging)
    return {
        "create": (recorded(e2e, "tfserving-prod", "CREATE", False), build_review(created)),
        "update": (recorded(e2e, "tfserving-prod", "UPDATE", False),
                   build_review(scaled, operation="UPDATE", old=created)),
        "dry-run": (recorded(e2e, "tfserving-staging", "CREATE", True), build_review(staged, dry_run=True)),
        "denied": (recorded(e2e, "tfserving-staging", "CREATE", False), build_review(staged)),
    }


def test_the_request_envelope_differs_only_where_listed(cases):
    for case, (real, ours) in cases.items():
        assert envelope_differences(real.review, ours) == ENVELOPE_DIFFERENCES, case


def test_the_api_server_sends_the_rendered_object_plus_its_defaults(cases):
    for case, (real, ours) in cases.items():
        for key in ("object", "oldObject"):
            if ours["request"][key] is None:
                assert real.review["request"][key] is None, (case, key)
                continue
            added, differing = object_differences(real.review["request"][key], ours["request"][key])
            assert differing == set(), (case, key)
            assert {path for path in added if not SERVER_POPULATED.match(path)} == set(), (case, key)


def test_the_api_server_calls_with_its_timeout_and_json(e2e, cases):
    for real, _ in cases.values():
        assert real.method == "POST"
        assert real.path == f"/record?timeout={e2e.timeout_seconds}s"
        assert real.headers["Content-Type"] == "application/json"
        assert real.review["apiVersion"] == "admission.k8s.io/v1" and real.review["kind"] == "AdmissionReview"


def test_the_webhook_decides_ours_and_the_api_servers_the_same(e2e, cases):
    for case, (real, ours) in cases.items():
        path = "/validate" + real.path[len("/record"):]
        assert verdict(e2e, real.review, path) == verdict(e2e, ours, path), case
