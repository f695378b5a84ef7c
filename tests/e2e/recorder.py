"""An admission webhook that admits everything and records what the API server sent it (HTTPS, loopback).

Registered beside the real webhook with the same rules, selectors and matchConditions, it shows exactly the
AdmissionReviews the real API server builds — the reference our own builder (`webhook.admission.
build_review`) is compared with.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from webhook.certs import make_certs


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    review: dict


class AdmissionRecorder:
    def __init__(self, workdir: Path):
        self.certs = make_certs(workdir, ("127.0.0.1",), common_name="tfs-e2e-recorder")
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                review = json.loads(body)
                with recorder._lock:
                    recorder.requests.append(Recorded("POST", self.path, dict(self.headers.items()), review))
                answer = json.dumps({
                    "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                    "kind": "AdmissionReview",
                    "response": {"uid": review["request"]["uid"], "allowed": True},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.certs.cert), str(self.certs.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/record"

    def for_object(self, namespace: str, name: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if _names(r.review) == (namespace, name)]

    def start(self) -> AdmissionRecorder:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _names(review: dict) -> tuple[str | None, str | None]:
    request = review.get("request") or {}
    return request.get("namespace"), request.get("name")
