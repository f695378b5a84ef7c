"""The watch of an environment: `tfs-gitops watch` over the models TF Serving reads natively with a policy
that follows uploads (latest, latest:N, all), and the PrometheusRule alerting on what it measures.

With such a policy TF Serving loads a new version as soon as it appears in S3, complete or not; nothing
between the upload and the load checks it. The watch checks, per model, the version TF Serving will load
next (rulebook.names.ModelMetrics) and the rule alerts when it is invalid. It reads the same
ModelServerConfig TF Serving does (rendered with rulebook.modelconfig). One watch per S3 storage (endpoint,
region, TLS verification, credentials): a process has one set of S3 settings.

Files of overlays/<env>/_watch/: kustomization.yaml, <watch>.models.config, deployment-<watch>.yaml,
service-<watch>.yaml, networkpolicy.yaml and, when a watched model has monitoring on, prometheusrule.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.catalogue import NATIVE, Deployment, Environment, Storage
from generator.network import dns_egress, egress_peers, namespace_peer
from generator.render import podparts, tfserving
from rulebook.modelconfig import render_model_server_config
from rulebook.names import HEALTH_PATH, METRICS_PATH, READY_PATH, WATCH_APP, ModelMetrics
from rulebook.s3 import normalize
from rulebook.sync import HTTP_PORT, PROGRAM

CONFIG_DIR = "/etc/tfs-watch"
CONFIG_KEY = "models.config"
NAME_KEY = "app.kubernetes.io/name"
INSTANCE_KEY = "app.kubernetes.io/instance"
FOLLOWING_POLICIES = ("latest", "all")  # the policies under which an upload is loaded without a change
STALE_SECONDS = 900  # no complete pass over S3 for this long: the watch is blind


@dataclass(frozen=True)
class Watch:
    name: str
    storage: Storage
    deployments: tuple[Deployment, ...]


def watched(deployments: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
    """The deployments whose next load nobody checks: read natively under a policy that follows uploads."""
    return tuple(
        d
        for d in deployments
        if d.settings.storage.mode == NATIVE and d.settings.version_policy.kind in FOLLOWING_POLICIES
    )


def watches(deployments: tuple[Deployment, ...]) -> list[Watch]:
    by_storage: dict[tuple, list[Deployment]] = {}
    for deployment in watched(deployments):
        storage = deployment.settings.storage
        key = (storage.endpoint, storage.region, storage.verify_ssl, storage.credentials_secret)
        by_storage.setdefault(key, []).append(deployment)
    keys = sorted(by_storage)
    return [
        Watch(
            WATCH_APP if len(keys) == 1 else f"{WATCH_APP}-{index}",
            by_storage[key][0].settings.storage,
            tuple(by_storage[key]),
        )
        for index, key in enumerate(keys, start=1)
    ]


def files(
    environment: Environment, deployments: tuple[Deployment, ...], tools_image: str | None
) -> dict | None:
    """{file name: document or text} of overlays/<env>/_watch/, or None when nothing needs watching."""
    found = watches(deployments)
    if not found:
        return None
    result: dict[str, dict | str] = {}
    resources = []
    generators = []
    for watch in found:
        entries = [tfserving.model_entry(d, source=True) for d in watch.deployments]
        config_file = f"{watch.name}.{CONFIG_KEY}"
        result[config_file] = render_model_server_config(entries)
        generators.append({"name": f"{watch.name}-config", "files": [f"{CONFIG_KEY}={config_file}"]})
        result[f"deployment-{watch.name}.yaml"] = _deployment(watch, tools_image)
        result[f"service-{watch.name}.yaml"] = _service(watch)
        resources += [f"deployment-{watch.name}.yaml", f"service-{watch.name}.yaml"]
    result["networkpolicy.yaml"] = _network_policy(environment, found)
    resources.append("networkpolicy.yaml")
    if any(d.settings.monitoring for watch in found for d in watch.deployments):
        result["prometheusrule.yaml"] = prometheus_rule(environment)
        resources.append("prometheusrule.yaml")
    result["kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": environment.namespace,
        "resources": sorted(resources),
        "labels": [
            {
                "pairs": {
                    "app.kubernetes.io/part-of": "tfserving-gitops",
                    "app.kubernetes.io/managed-by": "tfs-gitops",
                    "tfs-gitops/environment": environment.name,
                },
                "includeTemplates": True,
            }
        ],
        "configMapGenerator": generators,
    }
    return result


def _selector(watch: Watch) -> dict:
    return {NAME_KEY: WATCH_APP, INSTANCE_KEY: watch.name}


def _deployment(watch: Watch, tools_image: str) -> dict:
    probe = {"port": "metrics"}
    container = {
        "name": "watch",
        "image": tools_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [PROGRAM],
        "args": ["watch", "--model-config-file", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "ports": [{"name": "metrics", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": podparts.tools_env(watch.storage),
        "readinessProbe": {"httpGet": {"path": READY_PATH, **probe}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": HEALTH_PATH, **probe}, "periodSeconds": 10},
        "resources": podparts.resource_list(
            (("cpu", "50m"), ("memory", "128Mi")), (("cpu", "500m"), ("memory", "256Mi"))
        ),
        "securityContext": podparts.container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            podparts.tmp_mount(),
        ],
    }
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(HTTP_PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": watch.name, "labels": _selector(watch)},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(watch)},
            "template": {
                "metadata": {"labels": _selector(watch), "annotations": annotations},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": podparts.pod_security_context(),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{watch.name}-config"}},
                        {"name": podparts.TMP_VOLUME, "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _service(watch: Watch) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": watch.name, "labels": _selector(watch)},
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(watch),
            # Metrics matter most while the watch is not ready: keep it a scrape target then too.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "metrics", "port": HTTP_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def _network_policy(environment: Environment, found: list[Watch]) -> dict:
    monitoring = sorted({d.settings.monitoring_namespace for watch in found for d in watch.deployments})
    egress = [dns_egress()]
    for watch in found:
        endpoint = normalize(watch.storage.endpoint)
        rule = {
            "to": egress_peers(endpoint.host, environment.namespace),
            "ports": [{"protocol": "TCP", "port": endpoint.port}],
        }
        if rule not in egress:
            egress.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": WATCH_APP, "labels": {NAME_KEY: WATCH_APP}},
        "spec": {
            "podSelector": {"matchLabels": {NAME_KEY: WATCH_APP}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [namespace_peer(name) for name in monitoring],
                    "ports": [{"protocol": "TCP", "port": HTTP_PORT}],
                }
            ],
            "egress": egress,
        },
    }


def prometheus_rule(environment: Environment) -> dict:
    """Alerts on the metrics of `tfs-gitops watch` (and of the sync sidecars, when scraped) in the
    environment's namespace; `model` is the TF Serving model name."""
    namespace = environment.namespace
    where = f'namespace="{namespace}"'
    model = "{{ $labels.model }}"
    rules = [
        _alert(
            "TFServingNextLoadInvalid",
            f"{ModelMetrics.NEXT_LOAD_VALID}{{{where}}} == 0",
            "1m",
            "critical",
            f"TF Serving will load an invalid version of {model}",
            f"The version TF Serving loads next for model {model} in {namespace} is not a complete "
            "SavedModel in S3 (a partial or broken upload). Finish the upload, remove the version, or pin "
            "a valid one (tfs-gitops promote).",
        ),
        _alert(
            "TFServingModelCheckStale",
            f"time() - {ModelMetrics.LAST_SUCCESS}{{{where}}} > {STALE_SECONDS}",
            "5m",
            "warning",
            f"Model {model} has not been checked against S3 for {STALE_SECONDS // 60} minutes",
            "The watch (or sync sidecar) has not completed a pass over S3: it cannot tell whether what "
            f"TF Serving loads next is valid. See its log and {ModelMetrics.ERRORS}.",
        ),
        _alert(
            "TFServingModelCheckErrors",
            f"increase({ModelMetrics.ERRORS}{{{where}}}[10m]) > 0",
            "15m",
            "warning",
            f"Checking model {model} in S3 keeps failing ({{{{ $labels.kind }}}})",
            "Errors reading the model's S3 path for 15 minutes: the storage is unreachable, the "
            "credentials are refused, or the path is wrong.",
        ),
        _alert(
            "TFServingModelWatchAbsent",
            f"absent({ModelMetrics.LAST_SUCCESS}{{{where}}})",
            "15m",
            "warning",
            f"No model checks are reported from {namespace}",
            f"Prometheus has no {ModelMetrics.LAST_SUCCESS} from {namespace}: the watch is not running "
            f"or not scraped (port {HTTP_PORT}, {METRICS_PATH}).",
        ),
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": WATCH_APP, "labels": {NAME_KEY: WATCH_APP}},
        "spec": {"groups": [{"name": f"tfs-gitops.{environment.name}", "rules": rules}]},
    }


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, description: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }
