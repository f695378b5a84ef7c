"""The admission half of `make demo`, in one of two forms.

- **With a Kubernetes API server** (kube-apiserver + etcd built from e2e/cluster, devtools.kubecluster): the
  generated ValidatingWebhookConfiguration and the webhook's RBAC are applied to a throw-away control plane,
  the webhook is served by gunicorn over TLS on loopback, and every `$ kubectl ...` line is a real kubectl
  command whose real output follows.
- **Without one** (the binaries are not built, and TFS_DEMO_BUILD=1 does not ask for them): the demo says so,
  posts the AdmissionReviews itself (`webhook.admission.build_review`) to the same served webhook and shows
  the webhook's answers as what they are — never as kubectl output.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shlex
import subprocess
from pathlib import Path

import yaml

from devtools.admission import build_review
from devtools.kubeapi import FakeKubeAPI
from devtools.kubecluster import ControlPlane, ensure_binaries
from devtools.s3server import S3Endpoint
from devtools.webhookserver import ServedWebhook
from rulebook.names import WEBHOOK_NAME

ROOT = Path(__file__).resolve().parent.parent
CERT_MANAGER_CRDS = ROOT / "schemas" / "upstream" / "cert-manager"
MODEL = "half-plus-two"
DEPLOYMENT = "half-plus-two-tfserving"
GPU_IMAGE = "tensorflow/serving:2.6.2-gpu"


def relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def webhook_env(endpoint: S3Endpoint, kubeconfig: Path) -> dict[str, str]:
    return {
        "KUBECONFIG": str(kubeconfig),
        "WEBHOOK_ALLOWED_S3_ENDPOINTS": endpoint.url,
        "WEBHOOK_CACHE_TTL_SECONDS": "0",  # the demo changes the bucket between admissions
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_REGION": endpoint.region,
    }


def story(endpoint: S3Endpoint, overlays: Path, workdir: Path):
    """A ClusterStory when kube-apiserver and etcd are built (or TFS_DEMO_BUILD=1 builds them), else a
    WebhookOnlyStory that says why."""
    build = os.environ.get("TFS_DEMO_BUILD") == "1"
    binaries = ensure_binaries(build=build)
    if binaries is None:
        return WebhookOnlyStory(endpoint, overlays, workdir)
    return ClusterStory(endpoint, overlays, workdir, binaries)


class ClusterStory:
    """A real kube-apiserver with the generated webhook configuration; kubectl does the applying."""

    real_api = True

    def __init__(self, endpoint: S3Endpoint, overlays: Path, workdir: Path, binaries):
        self.overlays = overlays
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = ControlPlane(binaries, workdir=workdir / "control-plane").start()
        print(f"kube-apiserver {binaries.kubernetes_version} and etcd {binaries.etcd_version} "
              f"({relative(binaries.directory)}) at {self.cluster.server}, ready in "
              f"{self.cluster.started_in:.1f} s; no scheduler or kubelet: admission happens at the API.")
        self.env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBECACHEDIR")}
        self.env.update(KUBECONFIG=relative(self.cluster.kubeconfig),
                        KUBECACHEDIR=relative(workdir / "kubectl-cache"))
        print(f"$ export KUBECONFIG={self.env['KUBECONFIG']}")
        self.hook: ServedWebhook | None = None
        self._install_webhook(endpoint)

    def kubectl(self, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """Run kubectl exactly as printed; print its output as it came."""
        print(f"$ {shlex.join(['kubectl', *args])}", flush=True)
        proc = subprocess.run(["kubectl", *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                print(stream, end="" if stream.endswith("\n") else "\n")
        print(f"(exit {proc.returncode})", flush=True)
        if proc.returncode not in expect:
            raise SystemExit(f"demo: kubectl {args[0]} exited {proc.returncode}, expected {expect}")
        return proc

    def _install_webhook(self, endpoint: S3Endpoint) -> None:
        webhook_dir = self.overlays / "dev" / "_webhook"
        print("\nThe webhook's generated manifests (cert-manager's CRDs first, so its Issuers and "
              "Certificates are accepted; nothing issues them here):")
        crds = [relative(CERT_MANAGER_CRDS / f"cert-manager.io_{kind}.yaml")
                for kind in ("issuers", "certificates")]
        self.kubectl("apply", "--server-side", "-f", crds[0], "-f", crds[1])
        self.kubectl("wait", "--for=condition=Established", "crd/issuers.cert-manager.io",
                     "crd/certificates.cert-manager.io")
        self.kubectl("apply", "-k", relative(webhook_dir))
        vwc = yaml.safe_load((webhook_dir / "validatingwebhookconfiguration.yaml").read_text())
        token = self.cluster.token_kubeconfig_for("tfs-webhook", "tfs-webhook")
        self.hook = ServedWebhook(webhook_env(endpoint, token), workdir=self.workdir / "webhook").start()
        print(f"\nThe webhook runs here (gunicorn, TLS) at {self.hook.url}, reading ConfigMaps with a token "
              "of the generated ServiceAccount tfs-webhook. In a cluster a Service leads to it and "
              "cert-manager's cainjector writes its CA into the configuration; here one patch does both:")
        ca_bundle = base64.b64encode(self.hook.certs.ca_cert.read_bytes()).decode()
        patch = [{"op": "replace", "path": "/webhooks/0/clientConfig",
                  "value": {"url": f"{self.hook.url}/validate", "caBundle": ca_bundle}}]
        patch_file = self.workdir / "clientconfig-patch.json"
        patch_file.write_text(json.dumps(patch))
        self.kubectl("patch", "validatingwebhookconfiguration", vwc["metadata"]["name"], "--type=json",
                     f"--patch-file={relative(patch_file)}")

    def create_namespace(self, environment: str) -> None:
        print("(Argo CD's CreateNamespace=true)")
        self.kubectl("create", "namespace", f"tfserving-{environment}")

    def sync(self, environment: str) -> bool:
        """What Argo CD's sync of overlays/<env>/half-plus-two does: apply it. True when all was admitted."""
        return self.kubectl("apply", "-k", relative(self.overlays / environment / MODEL),
                            expect=(0, 1)).returncode == 0

    def switch_to_gpu_image(self, environment: str) -> bool:
        return self.kubectl("set", "image", "-n", f"tfserving-{environment}", f"deployment/{DEPLOYMENT}",
                            f"tfserving={GPU_IMAGE}", expect=(0, 1)).returncode == 0

    def close(self) -> None:
        if self.hook is not None:
            self.hook.stop()
        self.cluster.stop()


class WebhookOnlyStory:
    """No API server: the demo posts AdmissionReviews to the served webhook and shows its answers."""

    real_api = False

    def __init__(self, endpoint: S3Endpoint, overlays: Path, workdir: Path):
        self.overlays = overlays
        self.live: dict[str, dict] = {}  # environment -> the Deployment as last admitted
        print("No Kubernetes API server here: kube-apiserver and etcd are not built. `make e2e` builds them "
              "once (about 5 minutes, 2.5 GB of memory, Go and the Go module proxy), or run "
              "`TFS_DEMO_BUILD=1 make demo`.\nUntil then the demo builds each AdmissionReview itself "
              "(webhook.admission.build_review), posts it to the served webhook and shows the webhook's "
              "answer. That is not kubectl output, and nothing below is.")
        self.kube = FakeKubeAPI().start()
        workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.kube.write_kubeconfig(workdir / "kubeconfig")
        self.hook = ServedWebhook(webhook_env(endpoint, kubeconfig), workdir=workdir / "webhook").start()
        print(f"Admission webhook {WEBHOOK_NAME} served by gunicorn over TLS at {self.hook.url}; its "
              f"ConfigMaps come from a stand-in API (devtools.kubeapi) at {self.kube.url}")

    def _rendered(self, environment: str) -> list[dict]:
        text = subprocess.run(["kubectl", "kustomize", str(self.overlays / environment / MODEL)], check=True,
                              capture_output=True, text=True).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def create_namespace(self, environment: str) -> None:
        pass

    def _decide(self, deployment: dict, operation: str, old: dict | None, what: str) -> bool:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        print(f"\nAdmissionReview {operation} of {what} (image {container['image']}), posted to "
              f"{self.hook.url}/validate?timeout=5s")
        status, body = self.hook.post(build_review(deployment, operation=operation, old=old),
                                      path="/validate?timeout=5s")
        if status != 200 or body is None:
            raise SystemExit(f"demo: the webhook answered HTTP {status}")
        response = body["response"]
        for text in response.get("warnings", []):
            print(f"the webhook warns: {text}")
        if response["allowed"]:
            print("the webhook's answer: allowed")
        else:
            status = response.get("status") or {}
            print(f"the webhook's answer: denied (code {status.get('code')}): {status.get('message')}")
        return bool(response["allowed"])

    def sync(self, environment: str) -> bool:
        docs = self._rendered(environment)
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                meta = doc["metadata"]
                self.kube.add_configmap(meta["namespace"], meta["name"], doc["data"])
        deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
        old = self.live.get(environment)
        admitted = self._decide(deployment, "UPDATE" if old else "CREATE", old,
                                f"overlays/{environment}/{MODEL}'s Deployment")
        if admitted:
            self.live[environment] = deployment
        return admitted

    def switch_to_gpu_image(self, environment: str) -> bool:
        old = self.live[environment]
        new = copy.deepcopy(old)
        new["spec"]["template"]["spec"]["containers"][0]["image"] = GPU_IMAGE
        return self._decide(new, "UPDATE", old, f"the {environment} Deployment with the GPU image")

    def close(self) -> None:
        self.hook.stop()
        self.kube.stop()
