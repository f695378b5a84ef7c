"""Names both halves must spell the same: the generator writes them into manifests, the webhook reads them."""

from __future__ import annotations

# The name in ValidatingWebhookConfiguration.webhooks[].name: kubectl shows it in every denial
# (`admission webhook "tfserving.tfs-gitops.io" denied the request: ...`); the process gets it as
# WEBHOOK_NAME.
WEBHOOK_NAME = "tfserving.tfs-gitops.io"
WEBHOOK_APP = "tfs-webhook"  # its namespace, Deployment, Service and Argo CD Application suffix
WATCH_APP = "tfs-watch"  # `tfs-gitops watch` of an environment: Deployment, Service, Application suffix
WEBHOOK_HTTPS_PORT = 8443
WEBHOOK_SERVICE_PORT = 443
WEBHOOK_PATH = "/validate"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"


class WebhookEnv:
    """The webhook's environment variables (its whole configuration)."""

    NAME = "WEBHOOK_NAME"
    ALLOWED_S3_ENDPOINTS = "WEBHOOK_ALLOWED_S3_ENDPOINTS"
    DEFAULT_S3_ENDPOINT = "WEBHOOK_DEFAULT_S3_ENDPOINT"
    ON_UNVERIFIABLE = "WEBHOOK_ON_UNVERIFIABLE"
    ON_UNRESOLVED = "WEBHOOK_ON_UNRESOLVED"
    ON_UNKNOWN_VARIANT = "WEBHOOK_ON_UNKNOWN_VARIANT"
    TFSERVING_IMAGES = "WEBHOOK_TFSERVING_IMAGES"
    GPU_TAG_MARKER = "WEBHOOK_GPU_TAG_MARKER"
    CACHE_TTL_SECONDS = "WEBHOOK_CACHE_TTL_SECONDS"
    NEGATIVE_CACHE_TTL_SECONDS = "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS"
    CHECK_BUDGET_SECONDS = "WEBHOOK_CHECK_BUDGET_SECONDS"
    CLIENT_CA_FILE = "WEBHOOK_CLIENT_CA_FILE"


GPU_RESOURCE = "nvidia.com/gpu"


class ModelMetrics:
    """Prometheus metrics of `tfs-gitops sync` and `tfs-gitops watch` (label `model`: the TF Serving name);
    the generated PrometheusRule alerts on them, so both sides spell them from here."""

    NEWEST_VERSION = "tfs_model_newest_version"  # highest version number found in S3
    DESIRED_VERSIONS = "tfs_model_desired_versions"  # how many versions the policy selects
    PRESENT_VERSIONS = "tfs_model_present_versions"  # how many are in place locally (sync)
    INVALID_VERSIONS = "tfs_model_invalid_versions"  # selected versions that fail the SavedModel contract
    NEXT_LOAD_VALID = "tfs_model_next_load_valid"  # 1 when what TF Serving loads next is valid, else 0
    LAST_SUCCESS = "tfs_model_last_success_timestamp_seconds"  # last complete pass over S3
    BYTES = "tfs_sync_bytes_total"  # bytes downloaded (sync) or read (watch)
    ERRORS = "tfs_sync_errors_total"  # label `kind`: unreachable, access-denied, …
