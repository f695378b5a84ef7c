"""The catalogue as frozen, typed objects, with every (environment, model) setting resolved.

Settings are layered, later layers winning: defaults < environment overrides < model < the model's
`environments.<env>` entry. Mappings (resources, storage, batching, ...) merge key by key; other
values (image, replicas, versionPolicy, versionLabels) are replaced as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.problems import Path
from rulebook.images import ImageRef, S3Support
from rulebook.policy import VersionPolicy

DEFAULT_IMAGE = "tensorflow/serving:2.6.2"
DEFAULT_CLUSTER = "https://kubernetes.default.svc"
DEFAULT_MONITORING_NAMESPACE = "monitoring"
MERGED_SETTINGS = (
    "resources",
    "storage",
    "tfserving",
    "monitoring",
    "batching",
    "autoscaling",
    "networkPolicy",
)
SETTING_KEYS = ("image", "replicas", "versionPolicy", "versionLabels", *MERGED_SETTINGS)

# storage.mode: TF Serving reads s3:// itself (native), or a local directory a sync sidecar fills (sync).
NATIVE = "native"
SYNC = "sync"


@dataclass(frozen=True, slots=True)
class Sync:
    """The sync containers of `storage.mode: sync`."""

    size_limit: str = "4Gi"  # of the emptyDir holding the synced versions
    requests: tuple[tuple[str, str], ...] = (("cpu", "50m"), ("memory", "128Mi"))
    limits: tuple[tuple[str, str], ...] = (("cpu", "1"), ("memory", "512Mi"))


@dataclass(frozen=True, slots=True)
class Storage:
    endpoint: str
    region: str = "us-east-1"
    verify_ssl: bool = True
    credentials_secret: str = "tfs-s3-credentials"
    mode: str = NATIVE  # resolved: NATIVE or SYNC
    sync: Sync = Sync()


@dataclass(frozen=True, slots=True)
class Resources:
    requests: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()
    gpu: int = 0


@dataclass(frozen=True, slots=True)
class Batching:
    enabled: bool = False
    max_batch_size: int = 128
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 1_000_000
    num_batch_threads: int = 8


@dataclass(frozen=True, slots=True)
class Autoscaling:
    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 3
    target_cpu_utilization: int = 80


@dataclass(frozen=True, slots=True)
class Settings:
    image: str
    replicas: int
    resources: Resources
    storage: Storage
    poll_wait_seconds: int
    monitoring: bool
    batching: Batching
    autoscaling: Autoscaling
    version_policy: VersionPolicy
    version_labels: tuple[tuple[str, int], ...]
    monitoring_namespace: str = DEFAULT_MONITORING_NAMESPACE  # Prometheus: may scrape the model's pods
    client_namespaces: tuple[str, ...] = ()  # namespaces besides its own whose pods may call the model


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    namespace: str
    cluster: str
    target_revision: str


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    serving_name: str
    base_path: str


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model served in one environment, every setting resolved."""

    model: Model
    environment: Environment
    settings: Settings


@dataclass(frozen=True, slots=True)
class ArgoCD:
    repo_url: str
    namespace: str = "argocd"
    project: str = "default"
    path: str = "overlays"  # relative to the repository root
    path_set: bool = False  # written in the catalogue (else the default, or what --out-dir says)


@dataclass(frozen=True, slots=True)
class Webhook:
    environments: tuple[str, ...]
    options: tuple[tuple[str, object], ...]  # the catalogue's webhook keys other than enabled/environments


@dataclass(frozen=True, slots=True)
class Catalogue:
    source: str
    argocd: ArgoCD
    environments: tuple[Environment, ...]
    models: tuple[Model, ...]
    deployments: tuple[Deployment, ...]  # enabled ones, in environment then model order
    webhook: Webhook | None
    warnings: tuple = ()  # generator.problems.Problem of severity WARNING: valid, but worth a look
    # This project's image (webhook, sync containers, watch): images.tools, else webhook.image; None: the
    # image of this version (generator.webhook_manifests.default_image).
    tools_image: str | None = None

    def deployments_in(self, environment: str) -> tuple[Deployment, ...]:
        return tuple(d for d in self.deployments if d.environment.name == environment)


# ---- resolution ---------------------------------------------------------------------------------

Layer = tuple[Path, dict]


def merge_layers(layers: list[Layer]) -> tuple[dict, dict[tuple[str, ...], Path]]:
    """Merged settings and, per setting (or sub-setting), the catalogue path that set it last."""
    merged: dict = {}
    origins: dict[tuple[str, ...], Path] = {}
    for prefix, layer in layers:
        for key in SETTING_KEYS:
            if key not in layer:
                continue
            value = layer[key]
            if key in MERGED_SETTINGS and isinstance(value, dict):
                target = merged.setdefault(key, {})
                for sub_key, sub_value in value.items():
                    if isinstance(sub_value, dict) and isinstance(target.get(sub_key), dict):
                        target[sub_key] = {**target[sub_key], **sub_value}
                    else:
                        target[sub_key] = sub_value
                    origins[(key, sub_key)] = (*prefix, key, sub_key)
            else:
                merged[key] = value
            origins[(key,)] = (*prefix, key)
    return merged, origins


def settings_layers(data: dict, env_index: int, model_index: int) -> list[Layer]:
    environment = data["environments"][env_index]
    model = data["models"][model_index]
    layers: list[Layer] = [(("defaults",), data.get("defaults", {}))]
    layers.append((("environments", env_index, "overrides"), environment.get("overrides", {})))
    layers.append((("models", model_index), model))
    specific = model.get("environments", {}).get(environment["name"])
    if specific is not None:
        layers.append((("models", model_index, "environments", environment["name"]), specific))
    return layers


def build_settings(merged: dict) -> Settings:
    resources = merged.get("resources", {})
    storage = merged["storage"]
    policy = merged.get("versionPolicy", "latest")
    image = merged.get("image", DEFAULT_IMAGE)
    monitoring = merged.get("monitoring", {})
    return Settings(
        image=image,
        replicas=merged.get("replicas", 1),
        resources=Resources(
            requests=_quantities(resources.get("requests", {})),
            limits=_quantities(resources.get("limits", {})),
            gpu=resources.get("gpu", 0),
        ),
        storage=Storage(
            endpoint=storage["endpoint"].rstrip("/"),
            region=storage.get("region", "us-east-1"),
            verify_ssl=storage.get("verifySsl", True),
            credentials_secret=storage.get("credentialsSecret", "tfs-s3-credentials"),
            mode=storage.get("mode") or default_mode(image),
            sync=_sync(storage.get("sync", {})),
        ),
        poll_wait_seconds=merged.get("tfserving", {}).get("fileSystemPollWaitSeconds", 30),
        monitoring=monitoring.get("enabled", True),
        batching=_batching(merged.get("batching", {})),
        autoscaling=_autoscaling(merged.get("autoscaling", {})),
        version_policy=_version_policy(policy),
        version_labels=tuple(sorted(merged.get("versionLabels", {}).items())),
        monitoring_namespace=monitoring.get("namespace", DEFAULT_MONITORING_NAMESPACE),
        client_namespaces=tuple(sorted(set(merged.get("networkPolicy", {}).get("clientNamespaces", [])))),
    )


def default_mode(image: str) -> str:
    """native for an image that reads s3:// itself; sync for every other (any image reads a local path)."""
    return NATIVE if ImageRef.parse(image).s3_support() is S3Support.YES else SYNC


def _sync(values: dict) -> Sync:
    default = Sync()
    resources = values.get("resources", {})
    return Sync(
        size_limit=_quantity(values.get("sizeLimit", default.size_limit)),
        requests=_quantities(resources["requests"]) if "requests" in resources else default.requests,
        limits=_quantities(resources["limits"]) if "limits" in resources else default.limits,
    )


def _quantities(values: dict) -> tuple[tuple[str, str], ...]:
    return tuple((name, _quantity(values[name])) for name in ("cpu", "memory") if name in values)


def _quantity(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _batching(values: dict) -> Batching:
    return Batching(
        enabled=values.get("enabled", False),
        max_batch_size=values.get("maxBatchSize", 128),
        batch_timeout_micros=values.get("batchTimeoutMicros", 0),
        max_enqueued_batches=values.get("maxEnqueuedBatches", 1_000_000),
        num_batch_threads=values.get("numBatchThreads", 8),
    )


def _autoscaling(values: dict) -> Autoscaling:
    return Autoscaling(
        enabled=values.get("enabled", False),
        min_replicas=values.get("minReplicas", 1),
        max_replicas=values.get("maxReplicas", 3),
        target_cpu_utilization=values.get("targetCPUUtilizationPercentage", 80),
    )


def _version_policy(value: object) -> VersionPolicy:
    if value == "all":
        return VersionPolicy("all")
    if isinstance(value, dict) and "specific" in value:
        return VersionPolicy("specific", versions=tuple(sorted(set(value["specific"]))))
    if isinstance(value, dict):
        return VersionPolicy("latest", count=value["latest"])
    return VersionPolicy("latest")


def build_environment(entry: dict) -> Environment:
    name = entry["name"]
    return Environment(
        name=name,
        namespace=entry.get("namespace", f"tfserving-{name}"),
        cluster=entry.get("cluster", DEFAULT_CLUSTER),
        target_revision=entry.get("targetRevision", "HEAD"),
    )


def build_model(entry: dict) -> Model:
    return Model(
        name=entry["name"],
        serving_name=entry.get("servingName", entry["name"]),
        base_path=entry["basePath"].rstrip("/"),
    )
