"""SSRF: the webhook contacts only allow-listed S3 endpoints; a canary listener must see zero connections."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.admission import build_review
from tests.webhook.deployments import NAMESPACE, deployment, models_config, set_env
from webhook.app import create_app
from webhook.config import WebhookConfig

pytestmark = pytest.mark.s3


class Canary:
    """A TCP listener that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture()
def canary():
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture()
def hostile(s3_server, fake_kube, s3_bucket):
    configmap = f"hostile-{uuid.uuid4().hex[:8]}"
    fake_kube.add_configmap(
        NAMESPACE,
        configmap,
        {"models.config": models_config("half_plus_two", f"s3://{s3_bucket}/tfserving/half_plus_two")},
    )
    return deployment(s3_endpoint=s3_server.host_port, configmap=configmap)


def _deny_message(served, dep) -> str:
    status, body = served.post(build_review(dep))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False
    return response["status"]["message"]


def test_endpoints_off_the_allow_list_are_never_contacted(served, s3_server, hostile, canary):
    allowed = s3_server.url
    cases = {
        f"127.0.0.1:{canary.port}": f"http://127.0.0.1:{canary.port} is not on the webhook's allow-list",
        "169.254.169.254": "'http://169.254.169.254' is a cloud metadata address",
        "169.254.169.254:80": "'http://169.254.169.254:80' is a cloud metadata address",
        "[fe80::1]:9000": "'http://[fe80::1]:9000' is a link-local address",
        "[::ffff:169.254.169.254]:80": "is a cloud metadata address",
        "metadata.google.internal": "is a cloud metadata host",
        f"localhost:{canary.port}": f"http://localhost:{canary.port} is not on the webhook's allow-list",
        f"user:pw@127.0.0.1:{canary.port}": "must not contain credentials",
        f"127.0.0.1:{canary.port}/bucket": "must not have a path",
        f"http://127.0.0.1:{canary.port}": "is not on the webhook's allow-list",
    }
    for endpoint, reason in cases.items():
        message = _deny_message(served, set_env(hostile, "S3_ENDPOINT", endpoint))
        assert message.startswith("savedmodel: S3_ENDPOINT "), message
        assert reason in message, message
        assert message.endswith(f"; use an allowed endpoint ({allowed})"), message
    # https on the allowed host:port is another endpoint
    message = _deny_message(served, set_env(hostile, "S3_USE_HTTPS", "1"))
    assert f"https://{s3_server.host_port} is not on the webhook's allow-list" in message
    time.sleep(0.3)
    assert canary.connections == 0


class _Redirector:
    """An S3 'endpoint' on the allow-list that answers everything with a redirect to the canary."""

    def __init__(self, target: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _redirect(self) -> None:
                self.send_response(307)
                self.send_header("Location", f"{target}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_PUT = _redirect  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_redirects_from_an_allowed_endpoint_are_not_followed(canary, monkeypatch):
    redirector = _Redirector(f"http://127.0.0.1:{canary.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "webhook-own-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "webhook-own-secret")
    try:
        config = WebhookConfig.from_env({"WEBHOOK_ALLOWED_S3_ENDPOINTS": redirector.url})
        configmaps = {"cm": {"data": {"models.config": models_config("m", "s3://bucket/m")}}}
        app = create_app(config, read_configmap=lambda ns, name, deadline: configmaps.get(name))
        dep = deployment(s3_endpoint=redirector.url.split("://")[1], configmap="cm")
        response = (
            app.test_client().post("/validate?timeout=5s", json=build_review(dep)).get_json()["response"]
        )
        # Denied as "cannot verify": the redirect is an answer we cannot use, never one we follow.
        assert response["allowed"] is False
        assert response["status"]["code"] == 503, response["status"]
        message = response["status"]["message"]
        assert "redirect" in message.lower() or "cannot verify" in message
    finally:
        redirector.close()
    time.sleep(0.3)
    assert canary.connections == 0
