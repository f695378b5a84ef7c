"""The sidecar's and the watcher's HTTP side: /healthz, /readyz and /metrics (Prometheus text format), on a
small threaded HTTP server. Metric names come from rulebook.names.ModelMetrics, which the generated
PrometheusRule reads too."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rulebook.names import HEALTH_PATH, METRICS_PATH, READY_PATH, ModelMetrics

from .sync import ModelState


class DeliveryMetrics:
    """One registry per process (several can live in one test process)."""

    def __init__(self, *, sync: bool) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._sync = sync
        labels = ["model"]

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, labels, registry=self.registry)

        self.newest = gauge(ModelMetrics.NEWEST_VERSION, "Highest version number found in S3.")
        self.desired = gauge(ModelMetrics.DESIRED_VERSIONS, "Versions the version policy selects in S3.")
        self.present = (
            gauge(ModelMetrics.PRESENT_VERSIONS, "Versions in place in the local directory TF Serving reads.")
            if sync
            else None
        )
        self.invalid = gauge(
            ModelMetrics.INVALID_VERSIONS, "Selected versions that fail the SavedModel contract."
        )
        self.next_load_valid = gauge(
            ModelMetrics.NEXT_LOAD_VALID, "1 when what TF Serving loads next is a valid SavedModel, else 0."
        )
        self.last_success = gauge(ModelMetrics.LAST_SUCCESS, "Unix time of the last complete pass over S3.")
        self.bytes = Counter(
            ModelMetrics.BYTES,
            "Bytes downloaded from S3 (sync) or read (watch).",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            ModelMetrics.ERRORS,
            "Passes that failed, by kind (unreachable, access-denied, ...).",
            ["model", "kind"],
            registry=self.registry,
        )

    def update(self, state: ModelState) -> None:
        model = state.model
        if state.bytes_read:
            self.bytes.labels(model).inc(state.bytes_read)
        if not state.ok:
            self.errors.labels(model, state.error_kind or "unknown").inc()
            if state.newest is None and state.present is None:
                return
        if state.newest is not None:
            self.newest.labels(model).set(state.newest)
        self.desired.labels(model).set(len(state.desired))
        self.invalid.labels(model).set(len(state.invalid))
        self.next_load_valid.labels(model).set(1 if state.next_load_valid else 0)
        if self.present is not None and state.present is not None:
            self.present.labels(model).set(len(state.present))
        if state.ok:
            self.last_success.labels(model).set(time.time())

    def forget(self, model: str) -> None:
        """Drop a model's series (it left the models.config)."""
        for metric in (
            self.newest,
            self.desired,
            self.present,
            self.invalid,
            self.next_load_valid,
            self.last_success,
            self.bytes,
        ):
            if metric is not None:
                with contextlib.suppress(KeyError):
                    metric.remove(model)

    def count_bytes(self, model: str, n: int) -> None:
        self.bytes.labels(model).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StatusServer:
    """GET /healthz (the loop is alive), /readyz (every selected version in place), /metrics."""

    def __init__(
        self,
        address: tuple[str, int],
        metrics: DeliveryMetrics,
        ready: Callable[[], bool],
        healthy: Callable[[], bool],
    ) -> None:
        handler = _handler(metrics, ready, healthy)
        self.httpd = ThreadingHTTPServer(address, handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="status-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: DeliveryMetrics, ready: Callable[[], bool], healthy: Callable[[], bool]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "tfs-gitops"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == METRICS_PATH:
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == HEALTH_PATH:
                ok = healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"the sync loop has stopped\n")
            elif path == READY_PATH:
                ok = ready()
                self._send(
                    200 if ok else 503, b"ready\n" if ok else b"not every selected version is in place\n"
                )
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # noqa: A002 - probes every few seconds: not logged
            pass

    return Handler
