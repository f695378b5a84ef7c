"""A stand-in Kubernetes API server on loopback (tests, bench, demo): it serves
GET /api/v1/namespaces/NS/configmaps/NAME from a dict.

Only the server is fake: the webhook talks to it with the real `kubernetes` client through a kubeconfig.
Every request is recorded so tests can assert the webhook only ever GETs configmaps.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps/([^/?]+)(\?.*)?$")


class FakeKubeAPI:
    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.delay = 0.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(("GET", self.path))
                match = _PATH.match(self.path)
                if match is None:
                    self._send(404, _status(404, "NotFound", "not found"))
                    return
                if api.delay:
                    threading.Event().wait(api.delay)
                key = (match.group(1), match.group(2))
                configmap = api.configmaps.get(key)
                if configmap is None:
                    self._send(404, _status(404, "NotFound", f'configmaps "{key[1]}" not found'))
                    return
                self._send(200, configmap)

            def _refuse(self) -> None:
                api.requests.append((self.command, self.path))
                self._send(405, _status(405, "MethodNotAllowed", "only GET"))

            do_POST = do_PUT = do_PATCH = do_DELETE = _refuse  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.configmaps[(namespace, name)] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "data": data,
        }

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "webhook", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "webhook"}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> FakeKubeAPI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
