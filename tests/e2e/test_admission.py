"""Admission by a real kube-apiserver: the generated ValidatingWebhookConfiguration, the served webhook, and
exactly what kubectl prints.

Every object is the generator's `kubectl kustomize overlays/<env>/<model>`, applied with the project's
kubectl (`kubectl apply -f -`). S3 holds half_plus_two 00000123 (complete) and 00000124 (only
saved_model.pb: an upload in progress), and half_plus_two_gpu 00000123. So, as generated from models.yaml:
prod (specific: [123]) is admitted; staging (latest → 124) and dev (all) are denied.
"""

from __future__ import annotations

import copy
import os
import signal
import time

import pytest

from rulebook.names import WEBHOOK_NAME
from tests.e2e.conftest import ENVIRONMENTS, EXCLUDED, ROOT, deployment_of, documents, dump

pytestmark = pytest.mark.e2e

MODEL = "half-plus-two"
NAME = "half-plus-two-tfserving"  # namePrefix + the base Deployment's name
BASE = "s3://models/tfserving/half_plus_two"
PARTIAL = (
    f'savedmodel: model "half_plus_two" version 124 ({BASE}/00000124) is invalid: '
    "variables/variables.index is missing: the variables cannot be restored (a partial upload?); finish the "
    "upload or pin "
)
PARTIAL_FIX = {  # the fix named depends on the version policy
    "staging": "a complete version (model_version_policy specific)",
    "dev": "version 123 (model_version_policy specific)",
}
GPU_WITHOUT_GPU = (
    'gpu-image: container "tfserving" runs the GPU image tensorflow/serving:2.6.2-gpu without a GPU; set '
    'resources.limits["nvidia.com/gpu"] to 1 or more, or use the CPU image tensorflow/serving:2.6.2'
)


def denied_on_create(message: str) -> str:
    """kubectl's stderr when the webhook denies a create (what the README promises a person sees)."""
    return (f'Error from server: error when creating "STDIN": admission webhook "{WEBHOOK_NAME}" denied the '
            f"request: {message}\n")


@pytest.fixture()
def e2e(e2e):
    """The session, with no TF Serving Deployment left by another test and no fault injected."""
    for namespace in [f"tfserving-{env}" for env in ENVIRONMENTS] + list(EXCLUDED):
        e2e.kubectl("delete", "deployments", "--all", "-n", namespace, "--wait=false", check=True)
    e2e.proxy.set_fault(None)
    yield e2e
    e2e.proxy.set_fault(None)


def test_kubectl_and_the_api_server_are_within_the_supported_skew(e2e):
    version = e2e.cluster.version()
    client, server = int(version["clientVersion"]["minor"]), int(version["serverVersion"]["minor"])
    assert version["serverVersion"]["gitVersion"] == e2e.cluster.binaries.kubernetes_version
    assert abs(client - server) <= 1, version  # kubectl supports one minor version of skew either way


def test_a_complete_version_is_admitted(e2e):
    checks = e2e.s3_checks()
    result = e2e.apply(e2e.rendered("prod", MODEL))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"deployment.apps/{NAME} created" in result.stdout.splitlines()
    assert e2e.exists("deployment", NAME, "tfserving-prod")
    assert e2e.s3_checks() == checks + 1


def test_the_generated_gpu_model_is_admitted(e2e):
    result = e2e.apply(e2e.rendered("prod", "half-plus-two-gpu"))
    assert (result.returncode, result.stderr) == (0, "")
    assert "deployment.apps/half-plus-two-gpu-tfserving created" in result.stdout.splitlines()


@pytest.mark.parametrize("environment", sorted(PARTIAL_FIX))
def test_a_partial_newest_version_is_denied_with_our_message_as_kubectl_prints_it(e2e, environment):
    result = e2e.apply(e2e.rendered(environment, MODEL))
    assert result.returncode == 1
    assert result.stderr == denied_on_create(PARTIAL + PARTIAL_FIX[environment])
    # The objects before it in the same apply were created; the Deployment was not.
    assert f"service/{NAME} created" in result.stdout.splitlines()
    assert not e2e.exists("deployment", NAME, f"tfserving-{environment}")


def test_a_gpu_image_without_a_gpu_is_denied(e2e):
    docs = e2e.rendered("prod", MODEL)
    container = deployment_of(docs)["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "tensorflow/serving:2.6.2-gpu"
    result = e2e.apply(docs)
    assert result.returncode == 1
    assert result.stderr == denied_on_create(GPU_WITHOUT_GPU)

    # Someone switching the image of the running Deployment by hand: an UPDATE, denied the same way.
    assert e2e.apply(e2e.rendered("prod", MODEL)).returncode == 0
    result = e2e.kubectl("set", "image", "-n", "tfserving-prod", f"deployment/{NAME}",
                         "tfserving=tensorflow/serving:2.6.2-gpu")
    assert result.returncode == 1
    assert result.stderr == (f'error: failed to patch image update to pod template: admission webhook '
                             f'"{WEBHOOK_NAME}" denied the request: {GPU_WITHOUT_GPU}\n')


def test_server_dry_run_gives_the_same_verdict_and_changes_nothing(e2e, s3_server):
    client = s3_server.client()
    before = client.list_objects_v2(Bucket="models")["Contents"]
    seen = len(e2e.proxy.requests)
    dry = e2e.apply(e2e.rendered("staging", MODEL), "--dry-run=server")
    during = e2e.proxy.requests[seen:]
    assert dry.returncode == 1
    assert dry.stderr == denied_on_create(PARTIAL + PARTIAL_FIX["staging"])
    assert during, "the dry run was checked against S3"
    assert {method for method, _ in during} <= {"GET", "HEAD"}  # reads only: no side effect in S3
    assert client.list_objects_v2(Bucket="models")["Contents"] == before
    assert not e2e.exists("deployment", NAME, "tfserving-staging")
    real = e2e.apply(e2e.rendered("staging", MODEL))
    assert (real.returncode, real.stderr) == (dry.returncode, dry.stderr)

    admitted = e2e.apply(e2e.rendered("prod", MODEL), "--dry-run=server")
    assert (admitted.returncode, admitted.stderr) == (0, "")
    assert f"deployment.apps/{NAME} created (server dry run)" in admitted.stdout.splitlines()
    assert not e2e.exists("deployment", NAME, "tfserving-prod")


def test_an_update_that_only_scales_is_admitted_without_an_s3_call(e2e):
    docs = e2e.rendered("prod", MODEL)
    assert e2e.apply(docs).returncode == 0
    admissions, checks, requests = e2e.admissions(), e2e.s3_checks(), len(e2e.proxy.requests)
    deployment_of(docs)["spec"]["replicas"] = 3
    result = e2e.apply(docs)
    assert (result.returncode, result.stderr) == (0, "")
    assert f"deployment.apps/{NAME} configured" in result.stdout.splitlines()
    assert e2e.admissions() == admissions + 1  # the UPDATE reached the webhook ...
    assert e2e.s3_checks() == checks  # ... which did not look at S3
    assert len(e2e.proxy.requests) == requests
    # `kubectl scale` writes the scale subresource, which the rules (deployments, not deployments/scale) leave
    # out: the webhook is not even asked.
    scaled = e2e.kubectl("scale", "-n", "tfserving-prod", f"deployment/{NAME}", "--replicas=4")
    assert (scaled.returncode, scaled.stdout) == (0, f"deployment.apps/{NAME} scaled\n")
    assert e2e.admissions() == admissions + 1
    # A change TF Serving would see (the image) is checked again.
    deployment_of(docs)["spec"]["template"]["spec"]["containers"][0]["image"] = "tensorflow/serving:2.6.5"
    assert e2e.apply(docs).returncode == 0
    assert e2e.s3_checks() == checks + 1


@pytest.mark.parametrize("namespace", EXCLUDED)
def test_a_deployment_in_an_excluded_namespace_never_reaches_the_webhook(e2e, namespace):
    deployment = copy.deepcopy(deployment_of(e2e.rendered("staging", MODEL)))  # would be denied
    deployment["metadata"]["namespace"] = namespace
    admissions = e2e.admissions()
    result = e2e.apply([deployment])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"deployment.apps/{NAME} created\n"
    assert e2e.admissions() == admissions
    assert not e2e.recorder.for_object(namespace, NAME)


NGINX = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "tfserving-prod"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}],
                     # TF Serving only as an init container: the matchCondition looks at containers only.
                     "initContainers": [{"name": "init", "image": "tensorflow/serving:2.6.2"}]},
        },
    },
}


def test_a_deployment_without_tf_serving_never_reaches_the_webhook(e2e):
    admissions = e2e.admissions()
    result = e2e.apply([NGINX])
    assert (result.returncode, result.stdout, result.stderr) == (0, "deployment.apps/web created\n", "")
    assert e2e.admissions() == admissions
    assert not e2e.recorder.for_object("tfserving-prod", "web")


def test_the_webhook_down_with_failure_policy_fail_is_the_api_servers_own_denial(e2e):
    assert e2e.vwc["webhooks"][0]["failurePolicy"] == "Fail"
    url = e2e.vwc["webhooks"][0]["clientConfig"]["url"]
    e2e.webhook.stop()
    try:
        result = e2e.apply(e2e.rendered("prod", MODEL))
        assert result.returncode == 1
        port = url.rsplit(":", 1)[1].split("/", 1)[0]
        assert result.stderr == (
            'Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed '
            f'calling webhook "{WEBHOOK_NAME}": failed to call webhook: Post "{url}?timeout='
            f'{e2e.timeout_seconds}s": dial tcp 127.0.0.1:{port}: connect: connection refused\n'
        )
        assert not e2e.exists("deployment", NAME, "tfserving-prod")
        # What the webhook never sees is not blocked by its absence.
        assert e2e.apply([NGINX]).returncode == 0
    finally:
        e2e.webhook.start()
    assert e2e.apply(e2e.rendered("prod", MODEL)).returncode == 0


def test_a_stalled_s3_is_answered_inside_the_webhooks_timeout(e2e):
    e2e.proxy.set_fault("delay", seconds=60, match="/models")
    started = time.monotonic()
    result = e2e.apply(e2e.rendered("prod", MODEL))
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    prefix = denied_on_create(f'savedmodel: cannot verify model "half_plus_two" at {BASE}: ').rstrip("\n")
    assert result.stderr.startswith(prefix), result.stderr
    assert "Internal error" not in result.stderr  # the webhook's answer, not the API server's timeout
    assert elapsed < e2e.timeout_seconds + 15  # a liveness bound, not a measurement


def test_a_stalled_webhook_is_cut_off_by_the_api_server(e2e):
    url = e2e.vwc["webhooks"][0]["clientConfig"]["url"]
    os.killpg(e2e.webhook.proc.pid, signal.SIGSTOP)
    try:
        result = e2e.apply(e2e.rendered("prod", MODEL))
    finally:
        os.killpg(e2e.webhook.proc.pid, signal.SIGCONT)
    assert result.returncode == 1
    assert result.stderr == (
        'Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed '
        f'calling webhook "{WEBHOOK_NAME}": failed to call webhook: Post "{url}?timeout='
        f'{e2e.timeout_seconds}s": context deadline exceeded\n'
    )


def test_a_missing_model_config_configmap_is_read_as_missing_through_the_api(e2e):
    deployment = deployment_of(e2e.rendered("prod", MODEL))
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    next(v for v in volumes if "configMap" in v)["configMap"]["name"] = "no-such-config"
    result = e2e.apply([deployment])
    assert result.returncode == 1
    assert result.stderr == denied_on_create(
        'savedmodel: cannot tell what container "tfserving" loads: ConfigMap tfserving-prod/no-such-config '
        "(--model_config_file) does not exist"
    )


def test_the_webhook_service_account_can_get_configmaps_and_nothing_else(e2e):
    configmap = next(d for d in e2e.rendered("prod", MODEL) if d["kind"] == "ConfigMap")
    e2e.apply([configmap])
    name = configmap["metadata"]["name"]

    def as_webhook(*args: str):
        return e2e.kubectl(*args, kubeconfig=e2e.webhook_kubeconfig)

    whoami = as_webhook("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == "system:serviceaccount:tfs-webhook:tfs-webhook"
    got = as_webhook("get", "configmap", name, "-n", "tfserving-prod", "-o", "jsonpath={.data}")
    assert got.returncode == 0 and "models.config" in got.stdout
    allowed = {
        ("get", "configmaps", "tfserving-prod"): "yes",
        ("get", "configmaps", "kube-system"): "yes",  # a ClusterRole: any namespace's model config
        ("list", "configmaps", "tfserving-prod"): "no",
        ("watch", "configmaps", "tfserving-prod"): "no",
        ("create", "configmaps", "tfserving-prod"): "no",
        ("update", "configmaps", "tfserving-prod"): "no",
        ("delete", "configmaps", "tfserving-prod"): "no",
        ("get", "secrets", "tfserving-prod"): "no",
        ("get", "secrets", "tfs-webhook"): "no",
        ("get", "deployments.apps", "tfserving-prod"): "no",
        ("get", "pods", "tfserving-prod"): "no",
        ("get", "namespaces", ""): "no",
        ("create", "serviceaccounts/token", "tfs-webhook"): "no",
        ("get", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""): "no",
    }
    for (verb, resource, namespace), expected in allowed.items():
        where = ["-n", namespace] if namespace else []
        answer = as_webhook("auth", "can-i", verb, resource, *where)
        assert answer.stdout.strip() == expected, (verb, resource, namespace, answer.stderr)
    listed = as_webhook("get", "configmaps", "-n", "tfserving-prod")
    assert listed.returncode == 1
    assert listed.stderr == (
        'Error from server (Forbidden): configmaps is forbidden: User '
        '"system:serviceaccount:tfs-webhook:tfs-webhook" cannot list resource "configmaps" in API group "" '
        'in the namespace "tfserving-prod"\n'
    )
    secrets = as_webhook("get", "secret", "anything", "-n", "tfserving-prod")
    assert secrets.returncode == 1 and "(Forbidden)" in secrets.stderr


def wait_established(e2e, crd: str, timeout: float = 60.0) -> None:
    """Until the API server serves the CRD. (`kubectl wait --for=condition=Established` fails instead of
    waiting while a new CRD has no status conditions yet.)"""
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + timeout
    while e2e.kubectl("get", f"crd/{crd}", "-o", f"jsonpath={jsonpath}").stdout != "True":
        assert time.monotonic() < deadline, f"{crd} not established after {timeout:.0f} s"
        time.sleep(0.2)


def test_every_generated_manifest_is_accepted_by_the_api_server(e2e):
    """Strict server-side field validation of each environment's whole tree (models, webhook, Argo CD
    Applications against Argo CD's CRDs), as a server dry run. TF Serving Deployments are left to the tests
    above: the webhook decides on them, after the API server has validated them."""
    upstream = ROOT / "schemas" / "upstream"
    crds = [*upstream.glob("argo-cd/*-crd.yaml"), *upstream.glob("prometheus-operator/*rules*.yaml")]
    for crd in sorted(crds):
        e2e.kubectl("apply", "--server-side", "-f", str(crd), check=True)
    for crd in ("applications.argoproj.io", "prometheusrules.monitoring.coreos.com"):
        wait_established(e2e, crd)
    for environment in ENVIRONMENTS:
        tree = documents(e2e.kubectl("kustomize", str(e2e.overlays / environment), check=True).stdout)
        argocd = documents(e2e.kubectl("kustomize", str(e2e.overlays / environment / "_argocd"),
                                       check=True).stdout)
        app_of_apps = documents((e2e.overlays / environment / "app-of-apps.yaml").read_text())
        checked = [d for d in tree + argocd + app_of_apps
                   if not (d["kind"] == "Deployment" and d["metadata"]["namespace"].startswith("tfserving-"))]
        result = e2e.kubectl("apply", "--dry-run=server", "-f", "-",
                             input=dump(checked))
        assert result.returncode == 0, (environment, result.stderr)
        assert set(result.stderr.splitlines()) <= KNOWN_WARNINGS, environment
        assert len(result.stdout.splitlines()) == len(checked)


# What the real API server may say about the generated manifests: nothing. (It once warned about the bare
# Argo CD finalizer name; the generator now writes "resources-finalizer.argocd.argoproj.io/foreground".)
KNOWN_WARNINGS: set[str] = set()
