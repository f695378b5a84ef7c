"""Kustomize documents: the shared base and GPU component, and one overlay per (environment, model).

Base objects are all named `tfserving`; each model overlay prefixes them with `<model>-` (so the Deployment
and Service are `<model>-tfserving`, the ConfigMap `<model>-tfserving-config-<hash>`) and several models share
one namespace. A prefix, not a rename patch: kustomize resolves references of prefixed copies of one base
composed side by side (overlays/<env>/), which it cannot do after renames.
"""

from __future__ import annotations

from generator.catalogue import SYNC, Deployment
from generator.network import dns_egress, egress_peers, namespace_peer
from generator.render import podparts, sync, tfserving
from generator.render.yamltext import dump_plain
from rulebook.images import STOCK_TFSERVING, ImageRef
from rulebook.names import GPU_RESOURCE
from rulebook.s3 import normalize
from rulebook.server import GRPC_PORT, MODEL_SERVER_PATH, PROMETHEUS_PATH, REST_PORT
from rulebook.sync import HTTP_PORT as SYNC_PORT

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
BASE_NAME = "tfserving"
CONFIG_NAME = "tfserving-config"
CONTAINER = "tfserving"
NAME_LABEL = {"app.kubernetes.io/name": "tfserving"}
COMMON_LABELS = {
    "app.kubernetes.io/part-of": "tfserving-gitops",
    "app.kubernetes.io/managed-by": "tfs-gitops",
}
INSTANCE_LABEL = "app.kubernetes.io/instance"
ENVIRONMENT_LABEL = "tfs-gitops/environment"
BASE_IMAGE = STOCK_TFSERVING


def kustomization(**fields) -> dict:
    return {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", **fields}


def base_files() -> dict[str, dict]:
    return {
        "base/kustomization.yaml": kustomization(
            resources=["deployment.yaml", "service.yaml", "poddisruptionbudget.yaml"],
            labels=[{"pairs": dict(COMMON_LABELS), "includeTemplates": True}],
        ),
        "base/deployment.yaml": _base_deployment(),
        "base/service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": BASE_NAME, "labels": dict(NAME_LABEL)},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(NAME_LABEL),
                "ports": [
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                    {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
                ],
            },
        },
        "base/poddisruptionbudget.yaml": {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": BASE_NAME, "labels": dict(NAME_LABEL)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(NAME_LABEL)}},
        },
        "components/gpu/kustomization.yaml": {
            "apiVersion": "kustomize.config.k8s.io/v1alpha1",
            "kind": "Component",
            "patches": [{"path": "tolerations.yaml"}],
        },
        "components/gpu/tolerations.yaml": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": BASE_NAME},
            "spec": {
                "template": {
                    "spec": {
                        "tolerations": [
                            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                        ]
                    }
                }
            },
        },
    }


def _base_deployment() -> dict:
    tcp_grpc = {"tcpSocket": {"port": "grpc"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": BASE_NAME, "labels": dict(NAME_LABEL)},
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": dict(NAME_LABEL)},
            "template": {
                "metadata": {"labels": dict(NAME_LABEL)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": podparts.pod_security_context(),
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": BASE_IMAGE,
                            # Not the image's entrypoint: it adds --model_name/--model_base_path.
                            "command": [MODEL_SERVER_PATH],
                            "ports": [
                                {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                                {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
                            ],
                            # TF Serving opens its ports only after the first load: allow 10 minutes for it.
                            "startupProbe": {**tcp_grpc, "periodSeconds": 10, "failureThreshold": 60},
                            "livenessProbe": {**tcp_grpc, "periodSeconds": 10, "failureThreshold": 3},
                            "securityContext": podparts.container_security_context(),
                            "volumeMounts": [
                                {
                                    "name": "tfserving-config",
                                    "mountPath": tfserving.CONFIG_DIR,
                                    "readOnly": True,
                                },
                                podparts.tmp_mount(),
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "tfserving-config", "configMap": {"name": CONFIG_NAME}},
                        {"name": podparts.TMP_VOLUME, "emptyDir": {}},
                    ],
                },
            },
        },
    }


def model_files(deployment: Deployment, tools_image: str | None) -> dict[str, dict | str]:
    """Files of overlays/<env>/<model>/: dicts are YAML documents, strings are text files. `tools_image`
    is this project's image (the sync containers of storage.mode sync)."""
    settings = deployment.settings
    name = deployment.model.name
    files: dict[str, dict | str] = {"models.config": tfserving.models_config(deployment)}
    config_files = ["models.config"]
    if settings.monitoring:
        files["monitoring.config"] = tfserving.monitoring_config()
        config_files.append("monitoring.config")
    if settings.batching.enabled:
        files["batching.config"] = tfserving.batching_config(settings.batching)
        config_files.append("batching.config")
    resources = ["../../base"]
    if settings.autoscaling.enabled:
        files["horizontalpodautoscaler.yaml"] = _hpa(deployment)
        resources.append("horizontalpodautoscaler.yaml")
    files["networkpolicy.yaml"] = _network_policy(deployment)
    resources.append("networkpolicy.yaml")
    fields: dict = {
        "namespace": deployment.environment.namespace,
        "namePrefix": f"{name}-",
        "resources": resources,
    }
    if settings.resources.gpu:
        fields["components"] = ["../../components/gpu"]
    fields["labels"] = [
        {"pairs": {INSTANCE_LABEL: name}, "includeSelectors": True},
        {"pairs": {ENVIRONMENT_LABEL: deployment.environment.name}, "includeTemplates": True},
    ]
    fields["images"] = [_image_entry(settings.image)]
    fields["configMapGenerator"] = [{"name": CONFIG_NAME, "files": config_files}]
    # Inline (one file fewer per model and environment); still a serialized document, not a template.
    fields["patches"] = [{"patch": dump_plain(_deployment_patch(deployment, tools_image))}]
    files["kustomization.yaml"] = kustomization(**fields)
    return files


def _image_entry(reference: str) -> dict:
    image = ImageRef.parse(reference)
    entry: dict = {"name": BASE_IMAGE}
    if image.repository != BASE_IMAGE:
        entry["newName"] = image.repository
    if image.tag:
        entry["newTag"] = image.tag
    if image.digest:
        entry["digest"] = image.digest
    return entry


def _deployment_patch(deployment: Deployment, tools_image: str | None) -> dict:
    settings = deployment.settings
    synced = settings.storage.mode == SYNC
    container: dict = {"name": CONTAINER, "args": tfserving.server_args(deployment)}
    if not synced:  # in sync mode TF Serving reads a local directory: no S3 settings, no keys
        container["env"] = podparts.s3_env(settings.storage)
    # Ready only once the model is loaded: /v1/models/NAME answers 200 while it is still loading.
    container["readinessProbe"] = {
        "httpGet": {"path": f"/v1/models/{deployment.model.serving_name}/metadata", "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    resources = _resources(deployment)
    if resources:
        container["resources"] = resources
    if synced:
        container["volumeMounts"] = [sync.serving_mount()]
    spec: dict = {}
    if not settings.autoscaling.enabled:
        spec["replicas"] = settings.replicas
    template: dict = {}
    if settings.monitoring:
        template["metadata"] = {
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(REST_PORT),
                "prometheus.io/path": PROMETHEUS_PATH,
            }
        }
    pod: dict = {}
    if synced:
        pod["initContainers"] = [sync.init_container(deployment, tools_image)]
    pod["containers"] = [container]
    if synced:
        if sync.has_sidecar(deployment):
            pod["containers"].append(sync.sidecar(deployment, tools_image))
        pod["volumes"] = [sync.volume(deployment)]
    template["spec"] = pod
    spec["template"] = template
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": BASE_NAME}, "spec": spec}


def _network_policy(deployment: Deployment) -> dict:
    """Ingress: gRPC and REST from the pods of the model's namespace (and clientNamespaces), the same plus
    the sync sidecar's metrics from the monitoring namespace. Egress: DNS and the storage endpoint only."""
    settings = deployment.settings
    namespace = deployment.environment.namespace
    serving_ports = [{"protocol": "TCP", "port": GRPC_PORT}, {"protocol": "TCP", "port": REST_PORT}]
    clients = [{"podSelector": {}}, *(namespace_peer(name) for name in settings.client_namespaces)]
    monitoring_ports = list(serving_ports)
    if settings.storage.mode == SYNC and sync.has_sidecar(deployment):
        monitoring_ports.append({"protocol": "TCP", "port": SYNC_PORT})
    endpoint = normalize(settings.storage.endpoint)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": BASE_NAME, "labels": {**NAME_LABEL, **COMMON_LABELS}},
        "spec": {
            # kustomize adds the instance label (includeSelectors): this model's pods only.
            "podSelector": {"matchLabels": dict(NAME_LABEL)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": clients, "ports": serving_ports},
                {"from": [namespace_peer(settings.monitoring_namespace)], "ports": monitoring_ports},
            ],
            "egress": [
                dns_egress(),
                {
                    "to": egress_peers(endpoint.host, namespace),
                    "ports": [{"protocol": "TCP", "port": endpoint.port}],
                },
            ],
        },
    }


def _resources(deployment: Deployment) -> dict:
    resources = deployment.settings.resources
    requests = resources.requests
    limits = resources.limits
    if resources.gpu:
        limits += ((GPU_RESOURCE, str(resources.gpu)),)
        requests += ((GPU_RESOURCE, str(resources.gpu)),)
    return podparts.resource_list(requests, limits)


def _hpa(deployment: Deployment) -> dict:
    scaling = deployment.settings.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": BASE_NAME, "labels": {**NAME_LABEL, **COMMON_LABELS}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": BASE_NAME},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }
