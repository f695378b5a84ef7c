"""The admission webhook's own Kubernetes objects, rendered purely from WebhookSettings (no disk I/O).

`render_webhook(settings)` returns {file name: object}; the generator writes them to
overlays/<env>/_webhook/ with a kustomization.yaml and an Argo CD Application whose ignoreDifferences are
`argocd_ignore_differences()`.

Certificates: a self-signed Issuer makes a CA Certificate, a CA Issuer signs the serving Certificate, and
cert-manager's cainjector copies that CA into the ValidatingWebhookConfiguration's caBundle (which is why
Argo CD must ignore caBundle). The API server is not a pod, so NetworkPolicy cannot select it by label:
ingress to 8443 is open to any source unless `api_server_cidrs` is given. See docs/webhook-deploy.md.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from rulebook.images import STOCK_TFSERVING
from rulebook.names import (
    HEALTH_PATH,
    READY_PATH,
    WEBHOOK_APP,
    WEBHOOK_HTTPS_PORT,
    WEBHOOK_NAME,
    WEBHOOK_PATH,
    WEBHOOK_SERVICE_PORT,
    WebhookEnv,
)
from rulebook.s3 import REGION_VARIABLE, Endpoint, EndpointError, normalize
from tfs_gitops import package_version

APP = WEBHOOK_APP
IMAGE_REPOSITORY = "ghcr.io/tfserving-gitops/webhook"  # this project's image, tagged with its version
HTTPS_PORT = WEBHOOK_HTTPS_PORT
SERVICE_PORT = WEBHOOK_SERVICE_PORT
RUN_AS = 65532  # the numeric non-root user of the image (Dockerfile)
# Kubernetes API server endpoints as seen from a pod after the Service DNAT: 443 on most managed clusters,
# 6443 on kubeadm/kind control planes.
API_SERVER_PORTS = (443, 6443)
# Never reachable for S3 egress, even to "any address": link-local (cloud metadata lives there).
_EXCEPT_V4 = ("169.254.0.0/16",)
_EXCEPT_V6 = ("fe80::/10",)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_COMPONENT = r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
_IMAGE_REPOSITORY = re.compile(rf"{_COMPONENT}(?::[0-9]+)?(?:/{_COMPONENT})*")
_LABEL_KEY_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class WebhookSettings:
    environment: str  # catalogue environment name
    namespace: str = "tfs-webhook"
    image: str = field(default_factory=lambda: f"{IMAGE_REPOSITORY}:{package_version()}")
    replicas: int = 3
    failure_policy: Literal["Fail", "Ignore"] = "Fail"
    on_unverifiable: Literal["deny", "warn"] = "deny"  # deny <-> Fail, warn <-> Ignore (validated to match)
    timeout_seconds: int = 5
    allowed_s3_endpoints: tuple[str, ...] = ()  # URLs, e.g. "http://rgw.storage.svc:7480"
    default_s3_endpoint: str | None = None
    s3_credentials_secret: str = "tfs-webhook-s3"  # the webhook's OWN read-only keys
    argocd_namespace: str = "argocd"
    tfserving_images: tuple[str, ...] = (STOCK_TFSERVING,)
    aws_region: str = "us-east-1"
    # The API server's addresses as seen from pods; when given, ingress to 8443 and API egress use only them.
    api_server_cidrs: tuple[str, ...] = ()


_POLICY_FOR = {"deny": "Fail", "warn": "Ignore"}


def validate_settings(settings: WebhookSettings) -> None:
    """ValueError naming the first setting that cannot be rendered into working manifests."""
    for field_name in ("environment", "namespace", "argocd_namespace", "s3_credentials_secret"):
        value = getattr(settings, field_name)
        if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"webhook {field_name} {value!r} must be a DNS-1123 label (a-z, 0-9, '-', ≤ 63)")
    if settings.on_unverifiable not in _POLICY_FOR:
        raise ValueError(f"webhook onUnverifiable must be 'deny' or 'warn', not {settings.on_unverifiable!r}")
    expected = _POLICY_FOR[settings.on_unverifiable]
    if settings.failure_policy != expected:
        raise ValueError(
            f"webhook failurePolicy {settings.failure_policy!r} contradicts onUnverifiable "
            f"{settings.on_unverifiable!r}: use failurePolicy {expected!r} (deny ↔ Fail, warn ↔ Ignore)"
        )
    timeout = settings.timeout_seconds
    if not _is_int(timeout) or not 1 <= timeout <= 30:
        raise ValueError(f"webhook timeoutSeconds must be an integer from 1 to 30, not {timeout!r}")
    if not _is_int(settings.replicas) or settings.replicas < 1:
        raise ValueError(f"webhook replicas must be an integer ≥ 1, not {settings.replicas!r}")
    image = settings.image
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise ValueError(f"webhook image {image!r} must be a non-empty image reference without spaces")
    if isinstance(settings.tfserving_images, str) or not settings.tfserving_images:
        raise ValueError("webhook tfserving_images must be a list naming at least one image repository")
    for repository in settings.tfserving_images:
        if not isinstance(repository, str) or not _IMAGE_REPOSITORY.fullmatch(repository):
            raise ValueError(f"webhook TF Serving image {repository!r} is not a valid image repository name")
    if not isinstance(settings.aws_region, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", settings.aws_region):
        raise ValueError(f"webhook AWS region {settings.aws_region!r} is not a region name")
    endpoints = _endpoints(settings.allowed_s3_endpoints)
    default = settings.default_s3_endpoint
    if default is not None and _endpoint(default) not in endpoints:
        raise ValueError(f"webhook defaultS3Endpoint {default!r} is not in allowedS3Endpoints")
    for cidr in settings.api_server_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except (TypeError, ValueError):
            raise ValueError(f"webhook API server CIDR {cidr!r} is not a network like 10.0.0.0/24") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def render_webhook(settings: WebhookSettings) -> dict[str, dict]:
    """Pure: {file name: one Kubernetes object as a dict}; ValueError for settings that cannot work."""
    validate_settings(settings)
    names = _Names(settings)
    return {
        "namespace.yaml": _namespace(settings),
        "serviceaccount.yaml": _service_account(settings, names),
        "clusterrole.yaml": _cluster_role(settings, names),
        "clusterrolebinding.yaml": _cluster_role_binding(settings, names),
        "issuer-selfsigned.yaml": _issuer(settings, names.selfsigned_issuer, {"selfSigned": {}}),
        "certificate-ca.yaml": _ca_certificate(settings, names),
        "issuer-ca.yaml": _issuer(settings, names.ca_issuer, {"ca": {"secretName": names.ca_secret}}),
        "certificate-serving.yaml": _serving_certificate(settings, names),
        "deployment.yaml": _deployment(settings, names),
        "service.yaml": _service(settings, names),
        "poddisruptionbudget.yaml": _pod_disruption_budget(settings, names),
        "networkpolicy.yaml": _network_policy(settings, names),
        "validatingwebhookconfiguration.yaml": _validating_webhook_configuration(settings, names),
    }


def argocd_ignore_differences() -> list[dict]:
    """The Application.spec.ignoreDifferences entries so Argo CD ignores the caBundle cainjector writes."""
    return [
        {
            "group": "admissionregistration.k8s.io",
            "kind": "ValidatingWebhookConfiguration",
            "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"],
        }
    ]


def match_expression(tfserving_images: tuple[str, ...]) -> str:
    """The CEL matchCondition: true when a container's image repository is one of `tfserving_images`.

    Deliberately a superset of the webhook's own test: any registry prefix (mirrors, docker.io/) and any tag
    or digest match, so nothing the webhook would check is skipped; the webhook makes the final decision.
    Only `exists`, `has` and `matches` (RE2) are used: all are in the API server's CEL since 1.28.
    """
    alternatives = "|".join(repository.replace(".", "[.]") for repository in tfserving_images)
    # (?i): the webhook compares repositories case-insensitively, so the condition must too.
    pattern = f"(?i)^(.*/)?({alternatives})([:@].*)?$"
    return f"object.spec.template.spec.containers.exists(c, has(c.image) && c.image.matches('{pattern}'))"


class _Names:
    def __init__(self, settings: WebhookSettings) -> None:
        self.app = APP
        self.service = APP
        self.cluster_scoped = f"{APP}-{settings.environment}"
        self.selfsigned_issuer = f"{APP}-selfsigned"
        self.ca_certificate = f"{APP}-ca"
        self.ca_secret = f"{APP}-ca"
        self.ca_issuer = f"{APP}-ca"
        self.serving_certificate = f"{APP}-serving"
        self.serving_secret = f"{APP}-tls"

    def dns_names(self, namespace: str) -> list[str]:
        svc = self.service
        return [svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local"]


def _labels(settings: WebhookSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": "admission-webhook",
        "app.kubernetes.io/part-of": "tfserving-gitops",
        "app.kubernetes.io/managed-by": "tfs-gitops",
        "tfs-gitops/environment": settings.environment,
    }


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "admission-webhook"}


def _metadata(settings: WebhookSettings, name: str, namespaced: bool = True, **extra: Any) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if namespaced:
        metadata["namespace"] = settings.namespace
    metadata["labels"] = _labels(settings)
    metadata.update(extra)
    return metadata


def _namespace(settings: WebhookSettings) -> dict:
    labels = _labels(settings) | {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    metadata = {"name": settings.namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _service_account(settings: WebhookSettings, names: _Names) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(settings, names.app)}


def _cluster_role(settings: WebhookSettings, names: _Names) -> dict:
    # The webhook reads --model_config_file ConfigMaps in the namespaces of the Deployments it validates.
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(settings, names.cluster_scoped, namespaced=False),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }


def _cluster_role_binding(settings: WebhookSettings, names: _Names) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(settings, names.cluster_scoped, namespaced=False),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": names.cluster_scoped,
        },
        "subjects": [{"kind": "ServiceAccount", "name": names.app, "namespace": settings.namespace}],
    }


def _issuer(settings: WebhookSettings, name: str, spec: dict) -> dict:
    metadata = _metadata(settings, name)
    return {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": metadata, "spec": spec}


def _ca_certificate(settings: WebhookSettings, names: _Names) -> dict:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _metadata(settings, names.ca_certificate),
        "spec": {
            "isCA": True,
            "commonName": f"{APP}-ca.{settings.namespace}.{settings.environment}",
            "secretName": names.ca_secret,
            "duration": "43800h",  # 5 years; the serving certificate rotates far more often
            "renewBefore": "720h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": names.selfsigned_issuer},
        },
    }


def _serving_certificate(settings: WebhookSettings, names: _Names) -> dict:
    dns_names = names.dns_names(settings.namespace)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _metadata(settings, names.serving_certificate),
        "spec": {
            "commonName": dns_names[2],
            "dnsNames": dns_names,
            "secretName": names.serving_secret,
            "duration": "2160h",  # 90 days; gunicorn re-reads the files when the Secret volume updates
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["digital signature", "server auth"],
            "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": names.ca_issuer},
        },
    }


def _container_env(settings: WebhookSettings) -> list[dict]:
    allowed = ",".join(endpoint.url for endpoint in _endpoints(settings.allowed_s3_endpoints))
    env = [
        {"name": WebhookEnv.NAME, "value": WEBHOOK_NAME},
        {"name": WebhookEnv.ALLOWED_S3_ENDPOINTS, "value": allowed},
    ]
    if settings.default_s3_endpoint is not None:
        default = _endpoint(settings.default_s3_endpoint).url
        env.append({"name": WebhookEnv.DEFAULT_S3_ENDPOINT, "value": default})
    env += [
        {"name": WebhookEnv.ON_UNVERIFIABLE, "value": settings.on_unverifiable},
        {"name": WebhookEnv.TFSERVING_IMAGES, "value": ",".join(settings.tfserving_images)},
        {"name": REGION_VARIABLE, "value": settings.aws_region},
        # Only the webhook's own keys: never fall back to the node's instance metadata credentials.
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
        _secret_env("AWS_ACCESS_KEY_ID", settings.s3_credentials_secret),
        _secret_env("AWS_SECRET_ACCESS_KEY", settings.s3_credentials_secret),
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    return env


def _secret_env(name: str, secret: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name}}}


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": HTTPS_PORT, "scheme": "HTTPS"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _deployment(settings: WebhookSettings, names: _Names) -> dict:
    container = {
        "name": "webhook",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tfs-gitops"],
        "args": [
            "webhook", "serve",
            "--bind", f"0.0.0.0:{HTTPS_PORT}",
            "--certfile", "/tls/tls.crt",
            "--keyfile", "/tls/tls.key",
        ],
        "ports": [{"name": "https", "containerPort": HTTPS_PORT, "protocol": "TCP"}],
        "env": _container_env(settings),
        "startupProbe": _probe(HEALTH_PATH, 2, 30),
        "readinessProbe": _probe(READY_PATH, 5, 2),
        "livenessProbe": _probe(HEALTH_PATH, 10, 3),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "tls", "mountPath": "/tls", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_spec = {
        "serviceAccountName": names.app,
        "automountServiceAccountToken": True,  # the webhook reads ConfigMaps through the Kubernetes API
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": {
            "podAntiAffinity": {
                # Preferred, not required: a single-node cluster (kind) must still run every replica.
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": _selector()},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "containers": [container],
        "volumes": [
            # 0440 + fsGroup: readable by the webhook's group only; the kubelet refreshes it on renewal.
            {"name": "tls", "secret": {"secretName": names.serving_secret, "defaultMode": 0o440}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(settings, names.app),
        "spec": {
            "replicas": settings.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector()},
            # Never fewer ready replicas than asked during a rollout: the API server depends on them.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": _labels(settings)}, "spec": pod_spec},
        },
    }


def _service(settings: WebhookSettings, names: _Names) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings, names.service),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(),
            "ports": [{"name": "https", "port": SERVICE_PORT, "targetPort": HTTPS_PORT, "protocol": "TCP"}],
        },
    }


def _pod_disruption_budget(settings: WebhookSettings, names: _Names) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(settings, names.app),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector()}},
    }


def _network_policy(settings: WebhookSettings, names: _Names) -> dict:
    api_peers = [{"ipBlock": {"cidr": cidr}} for cidr in settings.api_server_cidrs]
    ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": HTTPS_PORT}]}
    if api_peers:
        ingress["from"] = api_peers
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    api: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port} for port in API_SERVER_PORTS]}
    if api_peers:
        api["to"] = api_peers
    egress = [dns, api] + _s3_egress_rules(settings)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(settings, names.app),
        "spec": {
            "podSelector": {"matchLabels": _selector()},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [ingress],
            "egress": egress,
        },
    }


def _s3_egress_rules(settings: WebhookSettings) -> list[dict]:
    """One rule per allowed endpoint: its port, to the narrowest peer a NetworkPolicy can express."""
    rules: list[dict] = []
    for endpoint in _endpoints(settings.allowed_s3_endpoints):
        peers = _peers_for_host(endpoint.host, settings.namespace)
        rule = {"to": peers, "ports": [{"protocol": "TCP", "port": endpoint.port}]}
        if rule not in rules:
            rules.append(rule)
    return rules


def _peers_for_host(host: str, own_namespace: str) -> list[dict]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}]
    labels = host.split(".")
    if len(labels) == 1:  # a bare Service name resolves in the webhook's own namespace
        return [{"namespaceSelector": {"matchLabels": {_LABEL_KEY_NAME: own_namespace}}}]
    if len(labels) >= 3 and labels[2] == "svc":  # <service>.<namespace>.svc[.cluster.local]
        return [{"namespaceSelector": {"matchLabels": {_LABEL_KEY_NAME: labels[1]}}}]
    # Any other host name: NetworkPolicy cannot match names, so any address but link-local (metadata).
    return [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(_EXCEPT_V4)}},
        {"ipBlock": {"cidr": "::/0", "except": list(_EXCEPT_V6)}},
    ]


def _validating_webhook_configuration(settings: WebhookSettings, names: _Names) -> dict:
    excluded = sorted({"kube-system", settings.namespace, settings.argocd_namespace})
    annotations = {
        "cert-manager.io/inject-ca-from": f"{settings.namespace}/{names.serving_certificate}",
        # Argo CD: register the webhook only after its Deployment (wave 0) is healthy.
        "argocd.argoproj.io/sync-wave": "1",
    }
    webhook = {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": settings.failure_policy,
        "matchPolicy": "Equivalent",
        "timeoutSeconds": settings.timeout_seconds,
        "clientConfig": {
            "service": {
                "name": names.service,
                "namespace": settings.namespace,
                "path": WEBHOOK_PATH,
                "port": SERVICE_PORT,
            }
        },
        "rules": [
            {
                "apiGroups": ["apps"],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"],
                "scope": "Namespaced",
            }
        ],
        "namespaceSelector": {
            "matchExpressions": [{"key": _LABEL_KEY_NAME, "operator": "NotIn", "values": excluded}]
        },
        "matchConditions": [
            {"name": "tfserving-image", "expression": match_expression(settings.tfserving_images)},
        ],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": _metadata(settings, names.cluster_scoped, namespaced=False, annotations=annotations),
        "webhooks": [webhook],
    }


def _endpoint(url: str) -> Endpoint:
    try:
        return normalize(url)
    except EndpointError as exc:
        raise ValueError(f"webhook S3 endpoint: {exc}") from None


def _endpoints(urls: tuple[str, ...]) -> tuple[Endpoint, ...]:
    if isinstance(urls, str):
        raise ValueError("webhook allowedS3Endpoints must be a list of URLs, not one string")
    return tuple(sorted({_endpoint(url) for url in urls}))
