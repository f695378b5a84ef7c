"""The Flask application: POST /validate, GET /healthz, /readyz, /metrics.

`create_app(config=None)` builds it (config from the environment when None); the init_* functions attach
the pieces. Every request gets a decision or a clear 4xx; an exception inside a check is logged with its
traceback and answered as the contract's "internal error" row, never as a 500 page.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import time

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_options_header

from webhook.admission import BadRequest, parse_review, parse_timeout
from webhook.cache import Busy, Sweeper, TTLCache, digest
from webhook.checks.savedmodel import ModelVerifier
from webhook.config import WebhookConfig
from webhook.decide import Services, deadline_for, decide, decision_cache, internal_error
from webhook.extract import ConfigMapError, ConfigMapReader, KubernetesConfigMaps
from webhook.limits import CONFIGMAP_CACHE_BYTES, MAX_CONCURRENT_CHECKS, MAX_PENDING_CHECKS
from webhook.metrics import Metrics

log = logging.getLogger("webhook")
_FROM_ENVIRONMENT = object()


def create_app(config: WebhookConfig | None = None, *, read_configmap: object = _FROM_ENVIRONMENT) -> Flask:
    """The webhook app. `read_configmap`: a ConfigMapReader, None (no Kubernetes API), or the default
    (in-cluster credentials, else KUBECONFIG)."""
    config = config if config is not None else WebhookConfig.from_env(os.environ)
    importlib.import_module("savedmodel")  # ready means able to check: fail at start, not per request
    app = Flask("webhook")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    metrics = Metrics()
    if read_configmap is _FROM_ENVIRONMENT:
        read_configmap = KubernetesConfigMaps.from_environment()
    configmaps = configmap_cache(config)
    reader = cached_reader(read_configmap, config, configmaps) if read_configmap is not None else None
    verifier = ModelVerifier(
        config,
        on_check=lambda report: _count_check(metrics, report),
        on_lookup=lambda how: metrics.cache.labels("savedmodel", how).inc(),
    )
    services = Services(
        config=config, verifier=verifier, read_configmap=reader, decisions=decision_cache(config)
    )
    caches = [services.decisions, verifier.cache, configmaps]
    metrics.watch_caches(caches)
    sweep_every = min(t for t in (config.negative_cache_ttl_seconds, config.cache_ttl_seconds, 5.0) if t > 0)
    app.extensions["tfs_webhook"] = {
        "config": config,
        "metrics": metrics,
        "services": services,
        "ready": threading.Event(),
        "sweeper": Sweeper(caches, sweep_every).start(),
    }
    init_admission(app, services, metrics)
    init_health(app)
    init_metrics(app, metrics)
    init_errors(app, metrics)
    app.extensions["tfs_webhook"]["ready"].set()
    return app


def _count_check(metrics: Metrics, report) -> None:
    metrics.s3_checks.inc()
    metrics.s3_requests.inc(report.stats.requests)
    if report.error:
        metrics.s3_errors.inc()


def configmap_cache(config: WebhookConfig) -> TTLCache:
    """ConfigMaps as read (a missing one cached for the shorter TTL), by digest of namespace and name."""
    return TTLCache(
        "configmaps",
        ttl_for=lambda value: config.cache_ttl_seconds
        if value[0] is not None
        else config.negative_cache_ttl_seconds,
        weigh=lambda value: value[1],
        max_bytes=CONFIGMAP_CACHE_BYTES,
        workers=MAX_CONCURRENT_CHECKS,
        max_pending=MAX_PENDING_CHECKS,
    )


def _configmap_size(configmap) -> int:
    parts = [part for part in configmap.values() if isinstance(part, dict)]
    return sum(len(str(key)) + len(str(value)) for part in parts for key, value in part.items())


def cached_reader(reader: ConfigMapReader, config: WebhookConfig, cache: TTLCache) -> ConfigMapReader:
    """ConfigMap reads behind a TTL/single-flight cache that runs under its own budget."""

    def fetch(namespace: str, name: str, deadline: float):
        configmap = reader(namespace, name, deadline)
        return configmap, 0 if configmap is None else 2 * _configmap_size(configmap)

    def read(namespace: str, name: str, deadline: float):
        try:
            value, _ = cache.get_or_compute(
                digest(namespace, name),
                lambda flight_deadline: fetch(namespace, name, flight_deadline),
                deadline=deadline,
                budget=config.check_budget_seconds,
            )
        except Busy:
            raise ConfigMapError("too many reads are running") from None
        except TimeoutError:
            raise ConfigMapError("out of time") from None
        return value[0]

    return read


def init_admission(app: Flask, services: Services, metrics: Metrics) -> None:
    require_client_cert = services.config.client_ca_file is not None
    max_body = services.config.max_body_bytes

    @app.route("/validate", methods=["POST"])
    def validate():
        start = time.monotonic()
        environ = request.environ
        if require_client_cert and not _client_certificate(environ):
            return _error(metrics, 403, "a client certificate signed by WEBHOOK_CLIENT_CA_FILE is required")
        problem = _content_type_problem(environ.get("CONTENT_TYPE", ""))
        if problem:
            return _error(metrics, 415, problem)
        try:
            review = parse_review(_body(environ, max_body))
        except BadRequest as exc:
            return _error(metrics, exc.status, exc.message)
        timeout = _timeout(environ.get("QUERY_STRING", ""), services.config.default_timeout_seconds)
        deadline = deadline_for(timeout, services.config, start)
        try:
            decision = decide(review, services, deadline)
        except BadRequest as exc:  # the object, read only when a decision needs it
            return _error(metrics, exc.status, exc.message)
        except Exception:  # noqa: BLE001 - a bug in a check: logged here, answered per the contract
            log.exception("internal error", extra=_about(review))
            decision = internal_error(services.config)
        metrics.admission(decision.verdict, decision.check).inc()
        metrics.latency.observe(time.monotonic() - start)
        if not decision.allowed:
            log.info("denied", extra=_about(review) | {"reason": decision.message})
        return Response(decision.response_body(review.uid), mimetype="application/json")


def _content_type_problem(content_type: str) -> str | None:
    """Why the Content-Type is refused (415), or None. What the API server sends is compared as it is; any
    other value is parsed as werkzeug's request.mimetype and mimetype_params would."""
    if content_type in _JSON_CONTENT_TYPES:
        return None
    mimetype, params = parse_options_header(content_type)
    if mimetype.lower() != "application/json":
        return "Content-Type must be application/json"
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return "the body must be UTF-8 JSON (RFC 8259)"
    return None


_JSON_CONTENT_TYPES = frozenset(("application/json", "application/json; charset=utf-8"))


def _body(environ: dict, max_body: int) -> bytes:
    """The request body. A Content-Length within the cap (what the API server sends) is read as is; anything
    else goes through werkzeug (413 over the cap, chunked bodies)."""
    header = environ.get("CONTENT_LENGTH", "")
    length = int(header) if header.isascii() and header.isdigit() else None
    if length is not None and length <= max_body:
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            raise BadRequest(400, "the body is shorter than its Content-Length")
        return body
    return request.get_data(cache=False)


@functools.lru_cache(maxsize=64)
def _timeout(query_string: str, default: float) -> float:
    """The `timeout` query parameter in seconds (parse_timeout). The API server sends the same query string
    (`timeout=10s`) with every request: parsed once, the answer cached (64 entries of at most a request
    line each)."""
    return parse_timeout(_query_value(query_string, "timeout"), default)


def _query_value(query_string: str, name: str) -> str | None:
    """One query parameter, without parsing the whole query string (the API server sends only timeout)."""
    for pair in query_string.split("&", 8)[:8]:
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return None


def _about(review) -> dict:
    """What a log line says about a request: its identity, never its body."""
    return {
        "uid": review.uid,
        "namespace": review.namespace,
        "object": review.name,
        "operation": review.operation,
        "dryRun": review.dry_run,
    }


def _client_certificate(environ: dict) -> bool:
    """Whether the TLS peer presented a certificate (verified against the client CA by the TLS layer)."""
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    try:
        return bool(getpeercert and getpeercert())
    except (OSError, ValueError):
        return False


def init_health(app: Flask) -> None:
    state = app.extensions["tfs_webhook"]

    @app.get("/healthz")
    def healthz():
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz():
        if not state["ready"].is_set():
            return Response("not ready\n", status=503, mimetype="text/plain")
        return Response("ready\n", mimetype="text/plain")


def init_metrics(app: Flask, metrics: Metrics) -> None:
    @app.get("/metrics")
    def metrics_endpoint():
        return Response(
            metrics.render(),
            mimetype=metrics.content_type.split(";")[0],
            headers={"Content-Type": metrics.content_type},
        )


def init_errors(app: Flask, metrics: Metrics) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(metrics, exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # never a traceback in a response
        log.exception("unexpected error", extra={"method": request.method, "path": request.path[:200]})
        return _error(metrics, 500, "internal error")


def _error(metrics: Metrics, status: int, message: str):
    metrics.bad_requests.labels(str(status)).inc()
    response = jsonify({"error": message})
    response.status_code = status
    return response
