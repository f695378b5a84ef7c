"""The Flask application: POST /validate, GET /healthz, /readyz, /metrics.

`create_app(config=None)` builds it (config from the environment when None); the init_* functions attach
the pieces. Every request gets a decision or a clear 4xx; an exception inside a check is logged with its
traceback and answered as the contract's "internal error" row, never as a 500 page.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from webhook.admission import BadRequest, parse_review, parse_timeout, review_response
from webhook.cache import TTLCache
from webhook.checks.savedmodel import ModelVerifier
from webhook.config import WebhookConfig
from webhook.decide import Services, deadline_for, decide, decision_cache, internal_error
from webhook.extract import ConfigMapError, ConfigMapReader, KubernetesConfigMaps
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
    reader = cached_reader(read_configmap, config) if read_configmap is not None else None
    verifier = ModelVerifier(
        config,
        on_check=lambda report: _count_check(metrics, report),
        on_lookup=lambda how: metrics.cache.labels("savedmodel", how).inc(),
    )
    services = Services(
        config=config, verifier=verifier, read_configmap=reader, decisions=decision_cache(config)
    )
    app.extensions["tfs_webhook"] = {
        "config": config,
        "metrics": metrics,
        "services": services,
        "ready": threading.Event(),
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


def cached_reader(reader: ConfigMapReader, config: WebhookConfig) -> ConfigMapReader:
    """ConfigMap reads behind the same TTL/single-flight cache (missing ones cached for the shorter TTL)."""
    cache: TTLCache = TTLCache(
        config.cache_ttl_seconds,
        config.negative_cache_ttl_seconds,
        is_positive=lambda value: value is not None,
    )

    def read(namespace: str, name: str, deadline: float):
        try:
            value, _ = cache.get_or_compute(
                (namespace, name),
                lambda: reader(namespace, name, deadline),
                wait_timeout=max(deadline - time.monotonic(), 0.0),
            )
        except TimeoutError:
            raise ConfigMapError("out of time") from None
        return value

    return read


def init_admission(app: Flask, services: Services, metrics: Metrics) -> None:
    @app.route("/validate", methods=["POST"])
    def validate():
        start = time.monotonic()
        if request.mimetype != "application/json":
            return _error(metrics, 415, "Content-Type must be application/json")
        try:
            review = parse_review(request.get_data(cache=False))
        except BadRequest as exc:
            return _error(metrics, exc.status, exc.message)
        timeout = parse_timeout(request.args.get("timeout"), services.config.default_timeout_seconds)
        deadline = deadline_for(timeout, services.config, start)
        try:
            decision = decide(review, services, deadline)
        except Exception:  # noqa: BLE001 - a bug in a check: logged here, answered per the contract
            log.exception("internal error deciding uid=%s %s/%s", review.uid, review.namespace, review.name)
            decision = internal_error(services.config)
        metrics.admissions.labels(decision.verdict, decision.check).inc()
        metrics.latency.observe(time.monotonic() - start)
        if not decision.allowed:
            log.info(
                "denied uid=%r %r/%r dryRun=%s: %s",
                review.uid,
                review.namespace,
                review.name,
                review.dry_run,
                decision.message,
            )
        return jsonify(review_response(review.uid, decision))


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
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(metrics, 500, "internal error")


def _error(metrics: Metrics, status: int, message: str):
    metrics.bad_requests.labels(str(status)).inc()
    response = jsonify({"error": message})
    response.status_code = status
    return response
