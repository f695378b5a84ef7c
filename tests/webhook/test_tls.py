"""TLS: the serving certificate is re-read on rotation; idle TLS connections do not stall the server."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import time

from click.testing import CliRunner

from devtools.admission import build_review
from devtools.webhookserver import ServedWebhook
from tfs_gitops.cli import main
from webhook.certs import make_certs
from webhook.tls import ReloadingContext


def _peer_cert(hook: ServedWebhook, cafile) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection((hook.host, hook.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.getpeercert(binary_form=True)


def test_reloading_context_picks_up_new_files(tmp_path):
    first = make_certs(tmp_path / "a")
    reloading = ReloadingContext(str(first.cert), str(first.key), check_interval=0)
    assert reloading.get().minimum_version == ssl.TLSVersion.TLSv1_2
    before = reloading.get()
    (first.cert.parent / "tls.crt").write_text("half-written")  # a rotation in progress: keep the old one
    assert reloading.get() is before
    second = make_certs(tmp_path / "b")
    shutil.copy(second.key, first.key)
    shutil.copy(second.cert, first.cert)
    assert reloading.get() is not before
    assert reloading.reloads == 1


def test_served_certificate_rotates_without_restart(tmp_path):
    with ServedWebhook(app="allow-all", workdir=tmp_path / "hook") as hook:
        old_cert = _peer_cert(hook, hook.certs.ca_cert)
        new = make_certs(tmp_path / "new")
        shutil.copy(new.key, hook.certs.key)
        shutil.copy(new.cert, hook.certs.cert)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _peer_cert(hook, new.ca_cert) != old_cert:
                    break
            except ssl.SSLError:
                time.sleep(0.2)
        else:
            raise AssertionError("the new certificate was never served")
        assert hook.proc.poll() is None


def test_idle_tls_connections_do_not_stall_requests(tmp_path):
    """Connections that finish the handshake and send nothing (Go's pooled spare connections) must not hold
    the worker's threads: with 4 threads and 12 such connections a request is still answered at once."""
    body = json.dumps(build_review({"metadata": {"name": "x"}, "spec": {}})).encode()
    with ServedWebhook(app="allow-all", threads=4, workdir=tmp_path / "hook") as hook:
        context = hook.ssl_context()
        idle = []
        for _ in range(12):
            raw = socket.create_connection((hook.host, hook.port), timeout=5)
            idle.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
        conn = http.client.HTTPSConnection(hook.host, hook.port, context=context, timeout=5)
        conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 200
        conn.close()
        for sock in idle:
            sock.close()


def test_certs_command_and_serve_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["webhook", "certs", "--out", str(tmp_path / "c"), "--host", "tfs-webhook.svc", "--host", "10.0.0.1"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert oct((tmp_path / "c" / "tls.key").stat().st_mode & 0o777) == "0o600"
    result = runner.invoke(main, ["webhook", "serve", "--bind", "nope"])
    assert result.exit_code == 2 and "expected HOST:PORT" in result.output
    result = runner.invoke(main, ["webhook", "serve", "--certfile", str(tmp_path / "c" / "tls.crt")])
    assert result.exit_code == 2 and "--certfile and --keyfile go together" in result.output
    result = runner.invoke(main, ["webhook", "serve"], env={"WEBHOOK_ON_UNVERIFIABLE": "maybe"})
    assert result.exit_code == 2 and "bad configuration: WEBHOOK_ON_UNVERIFIABLE" in result.output
    result = runner.invoke(
        main, ["webhook", "serve"], env={"WEBHOOK_CLIENT_CA_FILE": str(tmp_path / "c" / "ca.crt")}
    )
    assert result.exit_code == 2 and "WEBHOOK_CLIENT_CA_FILE needs --certfile and --keyfile" in result.output
