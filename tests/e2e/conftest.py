"""The end-to-end session: a real kube-apiserver + etcd (devtools.kubecluster), the webhook under gunicorn
over TLS, SeaweedFS behind the fault proxy, and the repository's own catalogue generated and applied with
kubectl.

What is applied is what the generator renders, from the repository's models.yaml with one change: the
storage endpoint names the loopback S3 server (through the fault proxy, which forwards untouched unless a
test injects a fault). The webhook's ValidatingWebhookConfiguration is applied as rendered except for
`clientConfig`: the loopback URL of the served webhook and its CA as `caBundle` — what cert-manager's
cainjector writes in a cluster. The webhook runs with the rendered Deployment's environment (its S3 keys, a
Secret in a cluster, are the test server's) and reads ConfigMaps with a token of the rendered ServiceAccount,
bound by the rendered ClusterRole(Binding).

The binaries must have been built (`make e2e` builds them first); without them every test fails with the
command to run — they are never skipped.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devtools.faultproxy import FaultProxy
from devtools.kubecluster import ControlPlane, ensure_binaries
from devtools.s3server import S3Endpoint
from devtools.webhookserver import ServedWebhook
from tests.e2e.recorder import AdmissionRecorder

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "models.yaml"
CATALOGUE_ENDPOINT = "endpoint: http://rgw.storage.svc:7480"
CERT_MANAGER_CRDS = sorted((ROOT / "schemas" / "upstream" / "cert-manager").glob("*.yaml"))
MODEL_SOURCE = ROOT / "tests" / "testdata" / "savedmodels" / "saved_model_half_plus_two_cpu" / "00000123"
BUCKET = "models"  # the catalogue's basePaths: s3://models/tfserving/<servingName>
WEBHOOK_ENVIRONMENT = "prod"  # whose _webhook/ is installed: one webhook per cluster
ENVIRONMENTS = ("dev", "staging", "prod")
EXCLUDED = ("argocd", "tfs-webhook")  # the rendered namespaceSelector's, besides kube-system


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dump(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass
class E2E:
    """Everything a test needs: the API server, the served webhook, the S3 path through the fault proxy."""

    cluster: ControlPlane
    webhook: ServedWebhook
    proxy: FaultProxy
    s3: S3Endpoint
    recorder: AdmissionRecorder
    overlays: Path
    vwc: dict  # the ValidatingWebhookConfiguration as applied
    webhook_kubeconfig: Path

    @property
    def timeout_seconds(self) -> int:
        return self.vwc["webhooks"][0]["timeoutSeconds"]

    def kubectl(self, *args: str, input: str | None = None, **kwargs) -> subprocess.CompletedProcess:
        return self.cluster.kubectl(*args, input=input, **kwargs)

    def rendered(self, environment: str, model: str) -> list[dict]:
        """`kubectl kustomize overlays/<env>/<model>` of the generated tree."""
        built = self.kubectl("kustomize", str(self.overlays / environment / model), check=True)
        return documents(built.stdout)

    def apply(self, docs: list[dict] | str, *args: str) -> subprocess.CompletedProcess:
        return self.kubectl("apply", "-f", "-", *args, input=docs if isinstance(docs, str) else dump(docs))

    def delete(self, kind: str, name: str, namespace: str) -> None:
        self.kubectl("delete", kind, name, "-n", namespace, "--ignore-not-found", "--wait=false", check=True)

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        return self.kubectl("get", kind, name, "-n", namespace, "-o", "name").returncode == 0

    def admissions(self) -> float:
        """How many AdmissionReviews the webhook has decided (its own metric)."""
        return self.webhook.metric("tfs_webhook_admissions_total")

    def s3_checks(self) -> float:
        return self.webhook.metric("tfs_webhook_s3_checks_total")


def deployment_of(docs: list[dict]) -> dict:
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    return deployment


def _upload(client, prefix: str, only: tuple[str, ...] | None = None) -> None:
    for path in sorted(p for p in MODEL_SOURCE.rglob("*") if p.is_file()):
        relative = path.relative_to(MODEL_SOURCE).as_posix()
        if only is None or relative in only:
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{relative}", Body=path.read_bytes())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> ControlPlane:
    binaries = ensure_binaries(build=False)
    if binaries is None:
        pytest.fail("kube-apiserver and etcd are not built: run `make e2e` (it builds them first) or "
                    "`.venv/bin/python -m devtools.kubecluster build`", pytrace=False)
    with ControlPlane(binaries, workdir=tmp_path_factory.mktemp("control-plane")) as control_plane:
        yield control_plane


@pytest.fixture(scope="session")
def s3_proxy(s3_server: S3Endpoint) -> FaultProxy:
    with FaultProxy(s3_server.url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def overlays(s3_proxy: FaultProxy, tmp_path_factory) -> Path:
    """`tfs-gitops generate` of models.yaml with its storage endpoint at the loopback S3 (via the proxy)."""
    text = CATALOGUE.read_text()
    assert text.count(CATALOGUE_ENDPOINT) == 1, "models.yaml's storage endpoint moved: update the e2e fixture"
    work = tmp_path_factory.mktemp("catalogue")
    catalogue = work / "models.yaml"
    catalogue.write_text(text.replace(CATALOGUE_ENDPOINT, f"endpoint: {s3_proxy.url}"))
    out = work / "overlays"
    generated = subprocess.run(["tfs-gitops", "generate", "-c", str(catalogue), "--out-dir", str(out)],
                               capture_output=True, text=True)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return out


@pytest.fixture(scope="session")
def models_in_s3(s3_server: S3Endpoint) -> None:
    """half_plus_two: 00000123 complete, 00000124 only saved_model.pb (an upload in progress);
    half_plus_two_gpu: 00000123 complete. Never changed by a test."""
    client = s3_server.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    _upload(client, "tfserving/half_plus_two/00000123")
    _upload(client, "tfserving/half_plus_two/00000124", only=("saved_model.pb",))
    _upload(client, "tfserving/half_plus_two_gpu/00000123")


@pytest.fixture(scope="session")
def e2e(cluster, s3_server, s3_proxy, overlays, models_in_s3, tmp_path_factory) -> E2E:
    kubectl = cluster.kubectl
    # cert-manager's CRDs, so the rendered Issuers and Certificates are accepted (nothing issues them here).
    for crd in CERT_MANAGER_CRDS:
        kubectl("apply", "--server-side", "-f", str(crd), check=True)
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io", check=True)
    # The namespaces Argo CD would create (CreateNamespace=true), and Argo CD's own.
    for namespace in [f"tfserving-{env}" for env in ENVIRONMENTS] + ["argocd"]:
        kubectl("create", "namespace", namespace, check=True)

    rendered = documents(kubectl("kustomize", str(overlays / WEBHOOK_ENVIRONMENT / "_webhook"),
                                 check=True).stdout)
    by_kind = {doc["kind"]: doc for doc in rendered}
    vwc = by_kind["ValidatingWebhookConfiguration"]
    others = [doc for doc in rendered if doc is not vwc]
    applied = kubectl("apply", "-f", "-", input=dump(others))
    assert applied.returncode == 0, applied.stderr

    service_account = by_kind["ServiceAccount"]["metadata"]
    token_kubeconfig = cluster.token_kubeconfig_for(service_account["name"], service_account["namespace"])
    env = _webhook_environment(by_kind["Deployment"], s3_server)
    env["KUBECONFIG"] = str(token_kubeconfig)
    # The tests change nothing in S3 while they run, but several admit the same model one after another and
    # count S3 checks: results are not cached across admissions.
    env["WEBHOOK_CACHE_TTL_SECONDS"] = "0"
    webhook = ServedWebhook(env, workdir=tmp_path_factory.mktemp("webhook"))
    recorder = AdmissionRecorder(tmp_path_factory.mktemp("recorder")).start()
    try:
        webhook.start()
        served = injected(vwc, f"{webhook.url}{_path(vwc)}", webhook.certs.ca_cert)
        recording = _recording_copy(vwc, recorder)
        for config in (served, recording):
            applied = kubectl("apply", "-f", "-", input=dump([config]))
            assert applied.returncode == 0, applied.stderr
        yield E2E(cluster, webhook, s3_proxy, s3_server, recorder, overlays, served, token_kubeconfig)
    finally:
        webhook.stop()
        recorder.stop()


def injected(vwc: dict, url: str, ca_cert: Path) -> dict:
    """The rendered configuration with clientConfig pointing at `url` and the CA injected as caBundle."""
    vwc = copy.deepcopy(vwc)
    ca_bundle = base64.b64encode(ca_cert.read_bytes()).decode()
    for hook in vwc["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": ca_bundle}
    return vwc


def _path(vwc: dict) -> str:
    (hook,) = vwc["webhooks"]
    return hook["clientConfig"]["service"]["path"]


def _recording_copy(vwc: dict, recorder: AdmissionRecorder) -> dict:
    """The same registration (rules, selectors, matchConditions, timeout) sent to the recorder instead."""
    copy_ = injected(vwc, recorder.url, recorder.certs.ca_cert)
    copy_["metadata"] = {"name": "tfs-e2e-recorder"}
    for hook in copy_["webhooks"]:
        hook["name"] = "recorder.tfs-gitops.io"
        hook["failurePolicy"] = "Ignore"
    return copy_


def _webhook_environment(deployment: dict, s3: S3Endpoint) -> dict[str, str]:
    """The rendered container's environment; the Secret it names holds the test server's keys."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    secret = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    env.pop("HOME", None)  # /tmp in the pod (read-only root filesystem); here the user's own is fine
    return env
