"""Webhook benchmark: warm-cache admissions/s and p50/p99 against an allow-all baseline served by the same
gunicorn configuration in the same run, cold-check latency against SeaweedFS, single-flight S3 checks, and
the keep-alive stall of stock gthread versus the webhook's worker.

Run: `.venv/bin/python -c "from bench.webhook import main; main()"` (or `make bench`). Loops are bounded in
count and time. Targets: warm >= 0.8x baseline throughput, warm p99 <= 20 ms at concurrency 8, 1 S3 check
for 50 concurrent identical cold admissions.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from devtools.admission import build_review
from devtools.kubeapi import FakeKubeAPI
from devtools.s3server import SeaweedFS
from devtools.webhookserver import ServedWebhook

CONCURRENCY = 8
WARM_SECONDS = 4.0
WARM_MAX_REQUESTS = 20_000
COLD_SAMPLES = 40
SINGLE_FLIGHT = 50
NAMESPACE = "bench"
MODEL = (
    Path(__file__).resolve().parent.parent / "tests" / "testdata" / "admission" / "half_plus_two" / "00000123"
)


def _models_config(base: str) -> str:
    return (
        f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { latest { num_versions: 1 } } } }'
    )


def _deployment(s3_host_port: str, configmap: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "half-plus-two-tfserving", "namespace": NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "tfserving",
                            "image": "tensorflow/serving:2.6.2",
                            "command": ["/usr/bin/tensorflow_model_server"],
                            "args": ["--port=8500", "--model_config_file=/etc/tfserving/models.config"],
                            "env": [
                                {"name": "S3_ENDPOINT", "value": s3_host_port},
                                {"name": "S3_USE_HTTPS", "value": "0"},
                            ],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/tfserving"}],
                        }
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": configmap}}],
                }
            }
        },
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _load(hook: ServedWebhook, body: bytes, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Requests/s and latencies from `concurrency` keep-alive clients for `seconds` (bounded in count)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    budget = WARM_MAX_REQUESTS // concurrency
    errors = []

    def client() -> None:
        conn = hook.connection()
        mine = []
        try:
            for _ in range(budget):
                if time.monotonic() >= stop:
                    break
                start = time.perf_counter()
                status, _ = hook.post_raw(body, conn=conn)
                mine.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[:3]}")
    return len(latencies) / elapsed, latencies


def _stall_probe(stock: bool, threads: int = 4, idle: int = 8) -> float:
    """Seconds for one request while `idle` clients hold TLS connections without sending (max 3 s)."""
    body = json.dumps(build_review({"metadata": {"name": "x"}, "spec": {}})).encode()
    with ServedWebhook(app="allow-all", threads=threads, stock_gthread=stock) as hook:
        context = hook.ssl_context()
        held = []
        started = time.perf_counter()
        try:
            for _ in range(idle):
                raw = socket.create_connection((hook.host, hook.port), timeout=3)
                held.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
            conn = http.client.HTTPSConnection(hook.host, hook.port, context=context, timeout=3)
            started = time.perf_counter()
            conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()
            return time.perf_counter() - started
        except OSError:
            return 3.0 if time.perf_counter() - started >= 2.9 else time.perf_counter() - started
        finally:
            for sock in held:
                sock.close()


def main() -> None:
    print("== webhook (gunicorn over TLS, 1 worker x 64 threads, concurrency 8)")
    workdir = Path(tempfile.mkdtemp(prefix="tfs-webhook-bench-"))
    with SeaweedFS() as s3:
        client = s3.client()
        client.create_bucket(Bucket="bench")
        for path in sorted(MODEL.rglob("*")):
            if path.is_file():
                for prefix in ("warm", "cold", "flight"):
                    key = f"{prefix}/half_plus_two/00000123/{path.relative_to(MODEL).as_posix()}"
                    client.put_object(Bucket="bench", Key=key, Body=path.read_bytes())
        kube = FakeKubeAPI().start()
        kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
        for prefix in ("warm", "cold", "flight"):
            kube.add_configmap(
                NAMESPACE, prefix, {"models.config": _models_config(f"s3://bench/{prefix}/half_plus_two")}
            )
        env = {
            "WEBHOOK_ALLOWED_S3_ENDPOINTS": s3.url,
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "KUBECONFIG": str(kubeconfig),
        }
        try:
            _run(s3, env, workdir)
        finally:
            kube.stop()


def _run(s3, env: dict[str, str], workdir: Path) -> None:
    warm_body = json.dumps(build_review(_deployment(s3.host_port, "warm"), uid="warm")).encode()
    with ServedWebhook(app="allow-all", workdir=workdir / "base") as baseline:
        _load(baseline, warm_body, CONCURRENCY, 1.0)  # warm-up
        base_rps, base_lat = _load(baseline, warm_body, CONCURRENCY, WARM_SECONDS)
    with ServedWebhook(env, workdir=workdir / "hook") as hook:
        status, body = hook.post_raw(warm_body)
        assert status == 200 and json.loads(body)["response"]["allowed"], body
        _load(hook, warm_body, CONCURRENCY, 1.0)
        rps, lat = _load(hook, warm_body, CONCURRENCY, WARM_SECONDS)

        flight = _deployment(s3.host_port, "flight")
        checks_before = hook.metric("tfs_webhook_s3_checks_total")
        barrier = threading.Barrier(SINGLE_FLIGHT)
        answers = []

        def admit() -> None:
            review = json.dumps(build_review(flight, uid=str(uuid.uuid4()))).encode()
            conn = hook.connection()
            barrier.wait(timeout=30)
            answers.append(hook.post_raw(review, conn=conn)[0])
            conn.close()

        threads = [threading.Thread(target=admit) for _ in range(SINGLE_FLIGHT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        flight_checks = hook.metric("tfs_webhook_s3_checks_total") - checks_before
        assert answers.count(200) == SINGLE_FLIGHT, answers

    cold_env = env | {"WEBHOOK_CACHE_TTL_SECONDS": "0", "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": "0"}
    cold_body = json.dumps(build_review(_deployment(s3.host_port, "cold"), uid="cold")).encode()
    with ServedWebhook(cold_env, workdir=workdir / "cold") as cold:
        conn = cold.connection()
        cold_lat = []
        deadline = time.monotonic() + 30
        for _ in range(COLD_SAMPLES):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            cold.post_raw(cold_body, conn=conn)
            cold_lat.append(time.perf_counter() - start)
        conn.close()
        s3_requests = cold.metric("tfs_webhook_s3_requests_total") / max(len(cold_lat), 1)

    stock = _stall_probe(stock=True)
    ours = _stall_probe(stock=False)

    ms = 1000.0
    print(
        f"allow-all baseline : {base_rps:8.0f} admissions/s  p50 {statistics.median(base_lat) * ms:5.1f} ms  "
        f"p99 {_percentile(base_lat, 0.99) * ms:5.1f} ms"
    )
    print(
        f"webhook warm cache : {rps:8.0f} admissions/s  p50 {statistics.median(lat) * ms:5.1f} ms  "
        f"p99 {_percentile(lat, 0.99) * ms:5.1f} ms  ratio {rps / base_rps:.2f}x "
        "(target >= 0.80x, p99 <= 20 ms)"
    )
    print(
        f"webhook cold check : p50 {statistics.median(cold_lat) * ms:5.1f} ms  "
        f"p99 {_percentile(cold_lat, 0.99) * ms:5.1f} ms  ({len(cold_lat)} admissions, "
        f"{s3_requests:.1f} S3 requests each, SeaweedFS)"
    )
    print(
        f"single-flight      : {SINGLE_FLIGHT} concurrent identical cold admissions -> "
        f"{flight_checks:.0f} S3 check(s) (target 1)"
    )
    print(
        f"keep-alive stall   : 8 idle TLS connections, 4 threads: stock gthread {stock * ms:6.0f} ms, "
        f"webhook worker {ours * ms:6.1f} ms"
    )


if __name__ == "__main__":
    main()
