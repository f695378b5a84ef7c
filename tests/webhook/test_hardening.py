"""Issue 11, one test (or a few) per finding: hostile input, slow clients, bounded memory, no cache poisoning,
precise classification, type-safe extraction, forged log lines, and the minor ones. Time-bounded; they assert
liveness and bounds, never speed."""

from __future__ import annotations

import gc
import json
import logging
import socket
import ssl
import threading
import time
import tracemalloc
import uuid

import pytest

from devtools.admission import build_review
from devtools.faultproxy import FaultProxy
from devtools.webhookserver import ServedWebhook
from tests.webhook.deployments import (
    NAMESPACE,
    deployment,
    models_config,
    set_env,
    upload_model,
    with_container,
)
from webhook.app import create_app
from webhook.cache import TTLCache
from webhook.certs import make_client_cert
from webhook.config import WebhookConfig
from webhook.jsonlog import JSONFormatter
from webhook.limits import MAX_CONNECTIONS_PER_CLIENT, REQUEST_READ_SECONDS
from webhook.messages import clip, one_line


def _app(env: dict | None = None, configmaps: dict | None = None):
    config = WebhookConfig.from_env(env or {"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1"})
    configmaps = configmaps or {}
    return create_app(config, read_configmap=lambda ns, name, deadline: configmaps.get(name))


def _doubling_env(levels: int) -> list[dict]:
    env = [{"name": "L0", "value": "x"}]
    env += [{"name": f"L{k}", "value": f"$(L{k - 1})$(L{k - 1})"} for k in range(1, levels + 1)]
    return env


def _entrypoint_deployment(env: list[dict], args: list[str] | None = None) -> dict:
    dep = deployment(s3_endpoint="127.0.0.1:1")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["env"] = env + container["env"]
    if args is not None:
        container["args"] = args
    return dep


# --- finding 1: a 2 KB Deployment takes gigabytes and seconds ---


def test_doubling_env_expansion_is_refused_within_bounded_memory():
    client = _app().test_client()
    review = build_review(_entrypoint_deployment(_doubling_env(22)), uid="u")
    assert len(json.dumps(review)) < 4096
    tracemalloc.start()
    try:
        response = client.post("/validate", json=review).get_json()["response"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"].startswith("tfserving-webhook: the Deployment is refused: container")
    assert "expands to more than 65536 characters" in response["status"]["message"]
    assert peak < 32 * 1024 * 1024, peak  # 2**22 characters would be 4 MiB per level kept


def test_doubling_reference_in_model_base_path_is_refused():
    dep = _entrypoint_deployment(
        _doubling_env(20), args=["--model_base_path=s3://models/$(L20)", "--model_name=m"]
    )
    response = _app().test_client().post("/validate", json=build_review(dep)).get_json()["response"]
    assert response["allowed"] is False and response["status"]["code"] == 403
    assert "expands to more than" in response["status"]["message"]


def test_message_helpers_work_on_bounded_input():
    huge = "a" * 3_000_000
    assert len(clip(huge, 90)) == 90 and clip(huge, 90).endswith("…")
    assert len(one_line(huge)) == 300
    assert one_line("a\n" * 2_000_000, 20) == "a a a a a a a a a a…"


def test_long_image_and_path_are_refused_before_work():
    dep = with_container(deployment(s3_endpoint="127.0.0.1:1"), image="tensorflow/serving:" + "9" * 3_000_000)
    response = _app().test_client().post("/validate", json=build_review(dep)).get_json()["response"]
    assert response["allowed"] is False
    assert "image is 3000019 characters" in response["status"]["message"]


# --- finding 2: 64 idle connections freeze it ---


def _partial_client_hello(host: str, port: int, source: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=5, source_address=(source, 0))
    sock.sendall(b"\x16\x03\x01\x02\x00")  # 5 bytes of a TLS ClientHello record header, then nothing
    return sock


def _healthz(hook: ServedWebhook, timeout: float = 5.0) -> int:
    context = hook.ssl_context()
    with (
        socket.create_connection((hook.host, hook.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return int(tls.recv(64).split()[1])


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_stalled_handshakes_and_silent_connections_do_not_starve_the_server(tmp_path):
    """More stalled TLS handshakes than threads (from two addresses), plus silent TCP connections: /healthz
    is still answered, and connections over the per-client cap are closed at once."""
    with ServedWebhook(app="allow-all", threads=4, workdir=tmp_path / "hook") as hook:
        held = [
            _partial_client_hello(hook.host, hook.port, "127.0.0.2")
            for _ in range(MAX_CONNECTIONS_PER_CLIENT)
        ]
        held += [_partial_client_hello(hook.host, hook.port, "127.0.0.3") for _ in range(8)]
        held += [
            socket.create_connection((hook.host, hook.port), source_address=("127.0.0.4", 0))
            for _ in range(8)
        ]
        try:
            over = _partial_client_hello(hook.host, hook.port, "127.0.0.2")
            assert _closed_by_server(over, within=5.0)  # the cap: closed, not held
            over.close()
            for _ in range(3):
                assert _healthz(hook) == 200
            # A stalled handshake is closed once it is past its deadline (at its next byte).
            time.sleep(5.5)
            held[0].sendall(b"\x01")
            assert _closed_by_server(held[0], within=5.0)
        finally:
            for sock in held:
                sock.close()
        assert _healthz(hook) == 200
        assert hook.proc.poll() is None


def test_a_burst_from_one_address_like_the_api_server_is_not_refused(tmp_path):
    """The API server opens one connection per admission in flight: a burst of 80 concurrent connections
    from one address is answered, all of them (the per-client cap is above such bursts)."""
    body = json.dumps(build_review({"metadata": {"name": "x"}, "spec": {}})).encode()
    with ServedWebhook(app="allow-all", workdir=tmp_path / "hook") as hook:
        conns = [hook.connection() for _ in range(80)]
        for conn in conns:
            conn.connect()
        barrier = threading.Barrier(len(conns))
        statuses = []

        def admit(conn):
            barrier.wait(timeout=30)
            statuses.append(hook.post_raw(body, conn=conn)[0])
            conn.close()

        threads = [threading.Thread(target=admit, args=(conn,)) for conn in conns]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert statuses == [200] * len(conns)


def test_requests_trickled_byte_by_byte_hold_no_thread_and_are_cut_at_their_deadline(tmp_path):
    """More clients trickling request heads than threads: /healthz is answered meanwhile (the worker reads
    requests whole before a thread runs them), and each trickler is closed after REQUEST_READ_SECONDS."""
    with ServedWebhook(app="allow-all", threads=4, workdir=tmp_path / "hook") as hook:
        context = hook.ssl_context()
        tricklers = []
        for index in range(12):
            source = (f"127.0.0.{10 + index % 3}", 0)
            raw = socket.create_connection((hook.host, hook.port), timeout=5, source_address=source)
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
            tricklers.append(tls)
        try:
            started = time.monotonic()
            closed = set()
            while time.monotonic() - started < REQUEST_READ_SECONDS + 10 and len(closed) < len(tricklers):
                assert _healthz(hook) == 200
                for index, tls in enumerate(tricklers):
                    if index in closed:
                        continue
                    try:
                        tls.sendall(b"X")
                    except OSError:
                        closed.add(index)
                time.sleep(0.5)
            assert len(closed) == len(tricklers)
            assert time.monotonic() - started >= REQUEST_READ_SECONDS - 1
        finally:
            for tls in tricklers:
                tls.close()
        assert hook.proc.poll() is None


def test_a_request_trickled_byte_by_byte_is_cut_at_its_deadline(monkeypatch):
    """Reads of one request share one deadline from its first byte (webhook.tls), however slowly they come."""
    from webhook import tls

    monkeypatch.setattr(tls, "REQUEST_READ_SECONDS", 0.5)
    server, client = socket.socketpair()
    guarded = tls.GuardedSocket(fileno=server.detach())
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.1):
            try:
                client.sendall(b"G")
            except OSError:
                return

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            while True:
                guarded.recv(1)
        assert time.monotonic() - started < 5
        guarded.sendall(b"HTTP/1.1 408\r\n\r\n")  # a write disarms the deadline
        assert guarded.recv(1) == b"G"  # the next request gets its own
        guarded.new_request()
        assert guarded.recv(1) == b"G"
    finally:
        stop.set()
        guarded.close()
        client.close()


# --- finding 3: memory grows with distinct requests and is never returned ---


def test_distinct_large_admissions_leave_no_large_cache_entries():
    app = _app(
        {
            "WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1",
            "WEBHOOK_CACHE_TTL_SECONDS": "1",
            "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": "1",
        }
    )
    client = app.test_client()
    filler = "y" * (1024 * 1024)
    gc.collect()
    tracemalloc.start()
    try:
        for index in range(20):
            dep = set_env(deployment(s3_endpoint="127.0.0.1:1"), "FILLER", f"{index}{filler}")
            dep = with_container(dep, image="tensorflow/serving:2.6.2-gpu")  # denied by a local check: cached
            assert client.post("/validate", json=build_review(dep)).get_json()["response"]["allowed"] is False
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    services = app.extensions["tfs_webhook"]["services"]
    assert retained < 4 * 1024 * 1024, retained  # keyed by digest: not 20 MiB of serving fields
    time.sleep(1.2)
    for cache in app.extensions["tfs_webhook"]["sweeper"].caches:
        cache.sweep()
    assert len(services.decisions) == 0 and services.decisions.bytes == 0
    _, metrics = client.get("/metrics").status_code, client.get("/metrics").get_data(as_text=True)
    assert 'tfs_webhook_cache_entries{cache="decisions"} 0.0' in metrics
    assert 'tfs_webhook_cache_evictions_total{cache="decisions",reason="expired"} 20.0' in metrics
    assert 'tfs_webhook_cache_hit_ratio{cache="decisions"}' in metrics
    assert 'tfs_webhook_cache_bytes{cache="savedmodel"}' in metrics


def test_caches_are_bounded_by_bytes_least_recently_used_first():
    cache = TTLCache("t", ttl_for=lambda value: 60.0, weigh=len, max_bytes=10_000)
    for index in range(100):
        cache.put(index, "x" * 1000)
        assert cache.get(0) is not None  # used after every put: the least recently used go first, not 0
    assert cache.bytes <= 10_000 and 0 < len(cache) < 10
    assert cache.stats.evicted == 100 - len(cache)
    cache.put("huge", "x" * 20_000)  # larger than the whole cache: not stored, nothing evicted for it
    assert cache.get("huge") is None and cache.stats.evicted == 100 - len(cache)


# --- finding 4: one caller can get a model denied for everyone ---


def test_a_caller_out_of_time_leaves_the_shared_check_running_and_uncached():
    """The core of finding 4, deterministic: the first caller's deadline passes while its check is still
    running; it gets TimeoutError, nothing is cached for it, and the check goes on under its own budget and
    caches its real result for the next caller."""
    cache = TTLCache("t", ttl_for=lambda value: 60.0)
    release = threading.Event()
    seen_deadlines = []

    def check(flight_deadline: float) -> str:
        seen_deadlines.append(flight_deadline - time.monotonic())
        release.wait(30)
        return "valid"

    with pytest.raises(TimeoutError):
        cache.get_or_compute("model", check, deadline=time.monotonic() + 0.05, budget=8.0)
    assert cache.get("model") is None  # no "cannot verify" left behind
    assert seen_deadlines and seen_deadlines[0] > 7.0  # the check's own budget, not the caller's 50 ms
    release.set()
    value, how = cache.get_or_compute("model", check, deadline=time.monotonic() + 30, budget=8.0)
    assert value == "valid" and how in ("shared", "hit")
    assert len(seen_deadlines) == 1


@pytest.mark.s3
def test_a_short_deadline_caller_cannot_poison_the_cache(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    base = upload_model(s3_server.client(), s3_bucket, "poison", ("00000123",))
    configmaps = {"cm": {"data": {"models.config": models_config("half_plus_two", base)}}}
    with FaultProxy(s3_server.url) as proxy:
        proxy.set_fault("delay", seconds=3.0, match=f"/{s3_bucket}", times=1)
        app = _app({"WEBHOOK_ALLOWED_S3_ENDPOINTS": proxy.url}, configmaps)
        client = app.test_client()
        dep = deployment(s3_endpoint=proxy.host_port, configmap="cm")
        short = client.post("/validate?timeout=1.5s", json=build_review(dep)).get_json()["response"]
        assert short["allowed"] is False and short["status"]["code"] == 503
        assert short["status"]["message"].startswith('savedmodel: cannot verify model "half_plus_two"')
        normal = client.post("/validate?timeout=10s", json=build_review(dep)).get_json()["response"]
        assert normal["allowed"] is True, normal
        assert app.extensions["tfs_webhook"]["metrics"].s3_checks._value.get() == 1  # one check in all


# --- finding 5: an impossible bucket name is classed as a storage outage ---


@pytest.mark.s3
@pytest.mark.parametrize(
    ("base", "reason"),
    [
        ("s3://mödels/tfserving/m", "bucket 'mödels' is not a valid S3 bucket name"),
        ("s3://models/" + "k" * 1100, "the prefix is not a valid S3 key: it is 1100 bytes of UTF-8"),
        ("s3://models/a\x01b", "the prefix is not a valid S3 key: it contains a control character"),
    ],
)
def test_invalid_bucket_names_and_keys_are_denied_not_unverifiable(
    served, s3_server, fake_kube, base, reason
):
    configmap = f"cm-{uuid.uuid4().hex[:10]}"
    fake_kube.add_configmap(NAMESPACE, configmap, {"models.config": models_config("m", base)})
    dep = deployment(s3_endpoint=s3_server.host_port, configmap=configmap)
    status, body = served.post(build_review(dep))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403, response
    assert reason in response["status"]["message"]


def test_invalid_bucket_is_denied_even_when_unverifiable_is_warn():
    configmaps = {"cm": {"data": {"models.config": models_config("m", "s3://mödels/m")}}}
    env = {"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1", "WEBHOOK_ON_UNVERIFIABLE": "warn"}
    dep = deployment(s3_endpoint="127.0.0.1:1", configmap="cm")
    response = _app(env, configmaps).test_client().post("/validate", json=build_review(dep)).get_json()
    assert response["response"]["allowed"] is False
    assert response["response"]["status"]["code"] == 403


# --- finding 6: wrong field types become internal errors, and logs can be forged ---


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("subPath", 7, "volumeMounts[].subPath must be a string"),
        ("subPath", ["a"], "volumeMounts[].subPath must be a string"),
        ("mountPath", {"a": 1}, "volumeMounts[].mountPath must be a string"),
        ("name", 3.5, "volumeMounts[].name must be a string"),
    ],
)
def test_wrong_field_types_are_denied_naming_the_field(field, value, named):
    dep = deployment(s3_endpoint="127.0.0.1:1")
    dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0][field] = value
    for env in ({}, {"WEBHOOK_ON_UNVERIFIABLE": "warn"}):
        app = _app({"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:1"} | env)
        response = app.test_client().post("/validate", json=build_review(dep))
        assert response.status_code == 200
        decision = response.get_json()["response"]
        assert decision["allowed"] is False and decision["status"]["code"] == 403
        assert named in decision["status"]["message"]


def test_a_uid_with_a_newline_cannot_forge_a_log_line(monkeypatch, caplog):
    from webhook.checks import gpu_image

    monkeypatch.setattr(gpu_image, "check", lambda *a, **k: (_ for _ in ()).throw(KeyError("bug")))
    uid = 'u\n{"level": "info", "msg": "forged"}\nforged line'
    with caplog.at_level(logging.INFO, logger="webhook"):
        _app().test_client().post(
            "/validate", json=build_review(deployment(s3_endpoint="127.0.0.1:1"), uid=uid)
        )
    records = [r for r in caplog.records if r.name == "webhook"]
    assert records
    for record in records:
        line = JSONFormatter().format(record)
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["uid"] == uid and entry["msg"] in ("internal error", "denied")
        assert "object" in entry and "spec" not in line  # identity only, never the body


# --- finding 7: the minor ones ---


def test_non_utf8_charset_is_415_and_null_object_is_400():
    client = _app().test_client()
    review = build_review(deployment(s3_endpoint="127.0.0.1:1"))
    body = json.dumps(review)
    response = client.post(
        "/validate", data=body.encode("utf-16"), content_type="application/json; charset=utf-16"
    )
    assert response.status_code == 415 and set(response.get_json()) == {"error"}
    ok = client.post("/validate", data=body, content_type="application/json; charset=UTF-8")
    assert ok.status_code == 200
    for value in (None, "missing"):
        broken = json.loads(body)
        if value is None:
            broken["request"]["object"] = None
        else:
            del broken["request"]["object"]
        response = client.post("/validate", json=broken)
        assert response.status_code == 400
        assert response.get_json() == {
            "error": "request.object is missing (an object is required for CREATE)"
        }


def test_a_body_that_is_not_utf8_json_is_400_whatever_its_content_type_says():
    client = _app().test_client()
    body = json.dumps(build_review(deployment(s3_endpoint="127.0.0.1:1")))
    deep = body.replace('"dryRun"', '"deep": ' + "[" * 5000 + "]" * 5000 + ', "dryRun"', 1)
    for data in (body.encode("utf-16"), b"\xef\xbb\xbf" + body.encode(), deep.encode(), b"[[]]"):
        response = client.post("/validate", data=data, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["error"].startswith(
            "the body is not a JSON object" if data == b"[[]]" else "the body is not JSON: "
        )
    broken = body.replace('"name": "tfserving"', '"name": "tfserving\\udc80"', 1).encode()  # a lone surrogate
    assert client.post("/validate", data=broken, content_type="application/json").status_code == 400


def test_an_object_that_cannot_be_read_is_400_when_a_decision_reads_it():
    # The envelope is read up front and the objects are only checked (syntax, escapes, UTF-8): a number out
    # of range is found when the object is read, and answered as any unreadable body is.
    client = _app().test_client()
    body = json.dumps(build_review(deployment(s3_endpoint="127.0.0.1:1")))
    unreadable = body.replace('"replicas": 1', '"replicas": 1e999', 1)
    assert unreadable != body
    response = client.post("/validate", data=unreadable, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("request.object cannot be read: Number out of range")


@pytest.mark.parametrize("raw", [" 127.0.0.1:9000", "127.0.0.1:9000/#", "127.0.0.1:09000", "127.0.0.1:9000/"])
def test_s3_endpoint_text_must_be_what_was_allowed(raw):
    env = {"WEBHOOK_ALLOWED_S3_ENDPOINTS": "http://127.0.0.1:9000"}
    configmaps = {"cm": {"data": {"models.config": models_config("m", "s3://models/m")}}}
    dep = deployment(s3_endpoint=raw, configmap="cm")
    response = (
        _app(env, configmaps).test_client().post("/validate", json=build_review(dep)).get_json()["response"]
    )
    assert response["allowed"] is False and response["status"]["code"] == 403
    assert response["status"]["message"].startswith(f"savedmodel: S3_ENDPOINT {raw!r} of container")
    assert response["status"]["message"].endswith("write 127.0.0.1:9000")


def test_with_a_client_ca_only_callers_with_a_certificate_are_answered(tmp_path):
    hook = ServedWebhook(app="validate", workdir=tmp_path / "hook")
    hook.env = {"WEBHOOK_CLIENT_CA_FILE": str(hook.certs.ca_cert), "WEBHOOK_ALLOWED_S3_ENDPOINTS": ""}
    client_cert, client_key = make_client_cert(hook.certs, tmp_path / "client")
    review = build_review(with_container(deployment(s3_endpoint="127.0.0.1:1"), image="nginx:1.27"))
    with hook:
        status, body = hook.post(review)
        assert status == 403 and "client certificate" in body["error"]
        assert hook.get("/healthz")[0] == 200  # probes present no certificate
        context = hook.ssl_context()
        context.load_cert_chain(str(client_cert), str(client_key))
        conn = hook.connection()
        conn = type(conn)(hook.host, hook.port, context=context, timeout=10)
        status, body = hook.post(review, conn=conn)
        conn.close()
        assert status == 200 and body["response"]["allowed"] is True


def test_tls_refuses_renegotiation_and_compression(served):
    context = served.ssl_context()
    with (
        socket.create_connection((served.host, served.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.compression() is None
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.cipher()[0].startswith(("ECDHE", "TLS_AES", "TLS_CHACHA20"))
    assert ssl.OP_NO_RENEGOTIATION
