"""Every bound the webhook applies to hostile input, in one place (the threat model in docs/webhook.md lists
each with its reason). Bounds are checked before the work they bound, so no input costs more than these.
"""

from __future__ import annotations

# --- the request -------------------------------------------------------------------------------------------
MAX_BODY_BYTES = 4 * 1024 * 1024  # two objects of etcd's 1.5 MiB limit plus the envelope
MAX_UID_CHARS = 256  # the API server sends a 36-character UUID

# --- one Deployment ----------------------------------------------------------------------------------------
MAX_CONTAINERS = 64  # containers of the pod template (real pods have a handful)
MAX_ENV_ENTRIES = 1024  # env entries of one container
MAX_ARGS = 1024  # command + args items of one container
MAX_VOLUMES = 256  # pod volumes, and volumeMounts of one container
# A value after $(VAR) expansion. Nothing the webhook reads from it (a path, a flag, an endpoint) can be
# longer: S3 keys are at most 1,024 bytes. Literal values are not limited by this (only the body cap).
MAX_EXPANDED_CHARS = 64 * 1024
# All values of one container after expansion together: doubling references (L1=$(L0)$(L0), ...) stop here
# instead of at gigabytes.
MAX_EXPANDED_TOTAL_CHARS = 1024 * 1024
MAX_IMAGE_CHARS = 1024  # a reference: name <= 255, tag <= 128, digest ~ 71 characters
MAX_PATH_CHARS = 4096  # PATH_MAX: a --model_config_file or mount path TF Serving could open

# --- what a message quotes -------------------------------------------------------------------------------
MAX_QUOTED_SCAN_CHARS = 4096  # message helpers look at no more of a value than this

# --- caches (bytes are estimates of what an entry holds; see webhook.cache) ------------------------------
DECISION_CACHE_BYTES = 8 * 1024 * 1024
CHECK_CACHE_BYTES = 16 * 1024 * 1024
CONFIGMAP_CACHE_BYTES = 8 * 1024 * 1024
UNVERIFIABLE_TTL_SECONDS = 2.0  # "cannot verify" from a storage failure is remembered this briefly
MAX_CONCURRENT_CHECKS = 16  # shared checks running at once (S3 and ConfigMap reads)
MAX_PENDING_CHECKS = 256  # shared checks started and not finished; more are answered "cannot verify"

# --- connections (webhook.tls, webhook.gunicorn_conf) -----------------------------------------------------
TLS_HANDSHAKE_SECONDS = 5.0  # Go's TLS client completes a handshake on loopback in < 10 ms
# Headers and body of one request, from its first byte (as Go's ReadHeaderTimeout, plus the body).
REQUEST_READ_SECONDS = 10.0
RESPONSE_WRITE_SECONDS = 10.0  # one write of the response
# Connections from one address at once. Slow clients hold no thread (webhook.gunicorn_conf), so this bounds
# file descriptors and buffers per address; it must stay above the API server's bursts: each admission in
# flight is one connection from it (Go opens as many as it needs), and 256 is 4x what 64 threads answer
# within a 5 s timeout. Refusing the API server would fail its admissions.
MAX_CONNECTIONS_PER_CLIENT = 256
MAX_CONNECTIONS = 1000  # all connections of the worker (gunicorn worker_connections)
# Requests read whole before a thread runs them, all connections together; beyond it a request is read by
# its thread (64 threads x 4 MiB at most), so many half-sent bodies cannot exhaust memory.
MAX_BUFFERED_REQUEST_BYTES = 64 * 1024 * 1024
