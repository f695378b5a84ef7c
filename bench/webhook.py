"""Webhook benchmark (`make bench`, or `python -m bench.webhook [--soak SECONDS] [--rounds N]`).

One run prints, each measured against a baseline taken in the same run on the same server:

1. warm-cache `/validate` vs the same server's `/healthz`: throughput and p99 at concurrency 8, with `hey`
   (Go, keep-alive connections, like the API server), over TLS and plain HTTP, ROUNDS rounds alternating
   the two paths; medians are the figures (targets: ratio >= 0.8, p99 <= 20 ms);
2. `/healthz` latency (new TLS connection per probe, like the kubelet) alone, then while 500 slow clients
   hold connections (stalled handshakes, silent TLS connections, requests trickled a byte at a time, silent
   TCP), from 20 loopback addresses;
3. peak RSS of the worker while a 30-level doubling env expansion is posted 100 times;
4. worker RSS after 1,000 distinct 1 MiB admissions, and after the cache TTL;
5. a soak: mixed allowed/denied/malformed admissions at a fixed rate, worker RSS and fd drift from the end of
   the warm-up (first fifth) to the end (target: < 5 MiB, 0 fds). Default 60 s; `--soak 600` for 10 min;
6. cold-check latency against SeaweedFS, single-flight (50 identical cold admissions -> 1 S3 check), and the
   keep-alive stall of stock gthread versus the webhook's worker.

The machine is shared: every figure is printed with the load average seen while it was taken.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import select
import shutil
import socket
import ssl
import statistics
import subprocess
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
HEY_SECONDS = 5
ROUNDS = 3
COLD_SAMPLES = 40
SINGLE_FLIGHT = 50
SLOW_CLIENTS = 500
SLOW_ADDRESSES = 20
EXPANSION_LEVELS = 30
EXPANSION_POSTS = 100
DISTINCT_ADMISSIONS = 1000
DISTINCT_BYTES = 1024 * 1024
SHORT_TTL_SECONDS = 5
SOAK_SECONDS = 60
SOAK_RATE = 100  # admissions per second
NAMESPACE = "bench"
MODEL = (
    Path(__file__).resolve().parent.parent / "tests" / "testdata" / "admission" / "half_plus_two" / "00000123"
)
MS = 1000.0


def _models_config(base: str) -> str:
    return (
        f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { latest { num_versions: 1 } } } }'
    )


def _deployment(s3_host_port: str, configmap: str, name: str = "half-plus-two-tfserving") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
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


def _gpu_mismatch(s3_host_port: str, filler: str = "") -> dict:
    """Denied by a local check (no S3): a GPU image without a GPU; `filler` makes it distinct and large."""
    dep = _deployment(s3_host_port, "warm")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "tensorflow/serving:2.6.2-gpu"
    if filler:
        container["env"].append({"name": "FILLER", "value": filler})
    return dep


def _doubling(s3_host_port: str, levels: int) -> dict:
    dep = _deployment(s3_host_port, "warm")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = [{"name": "L0", "value": "x"}]
    env += [{"name": f"L{k}", "value": f"$(L{k - 1})$(L{k - 1})"} for k in range(1, levels + 1)]
    container["env"] = env + container["env"]
    container["args"].append(f"--model_base_path=s3://bench/$(L{levels})")
    return dep


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


# --- the load generator ----------------------------------------------------------------------------------


def hey_binary() -> str:
    """`hey` from .venv/bin (`make bench` installs it with `go install`), else PATH."""
    local = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "hey"
    found = str(local) if local.exists() else shutil.which("hey")
    if not found:
        raise RuntimeError("hey not found: `make bench` installs it (go install github.com/rakyll/hey)")
    return found


def hey(url: str, body: Path | None = None, seconds: int = HEY_SECONDS) -> dict:
    argv = [hey_binary(), "-z", f"{seconds}s", "-c", str(CONCURRENCY)]
    if body is not None:
        argv += ["-m", "POST", "-T", "application/json", "-D", str(body)]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = re.findall(r"\[(\d+)\]\s+(Get|Post) ", out)
    p99 = re.search(r"99%+ in ([\d.]+) secs", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps or not p99 or set(codes) != {"200"} or errors:
        raise RuntimeError(f"hey failed against {url}: codes {codes}, errors {errors[:3]}\n{out[-800:]}")
    return {"rps": float(rps.group(1)), "p99": float(p99.group(1)) * MS, "load": _load()}


# --- process figures -------------------------------------------------------------------------------------


def _worker(hook: ServedWebhook) -> int:
    pids = hook.worker_pids()
    if len(pids) != 1:
        raise RuntimeError(f"expected one worker process, found {pids}")
    return pids[0]


def _status(pid: int, field: str) -> float:
    """VmRSS / VmHWM of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- 1. throughput --------------------------------------------------------------------------------------


def throughput(hook: ServedWebhook, body: Path, rounds: int) -> dict:
    base = hook.url
    hey(f"{base}/validate?timeout=10s", body, seconds=2)  # warm-up
    hey(f"{base}/healthz", seconds=2)
    runs = []
    for _ in range(rounds):
        health = hey(f"{base}/healthz")
        validate = hey(f"{base}/validate?timeout=10s", body)
        runs.append((health, validate))
    return {
        "runs": runs,
        "healthz_rps": statistics.median(h["rps"] for h, _ in runs),
        "healthz_p99": statistics.median(h["p99"] for h, _ in runs),
        "validate_rps": statistics.median(v["rps"] for _, v in runs),
        "validate_p99": statistics.median(v["p99"] for _, v in runs),
        "ratio": statistics.median(v["rps"] / h["rps"] for h, v in runs),
    }


def _print_throughput(label: str, result: dict) -> None:
    for index, (health, validate) in enumerate(result["runs"], 1):
        print(
            f"  {label} round {index}: /healthz {health['rps']:6.0f}/s p99 {health['p99']:5.1f} ms | "
            f"/validate {validate['rps']:6.0f}/s p99 {validate['p99']:5.1f} ms | "
            f"ratio {validate['rps'] / health['rps']:.2f} ({validate['load']})"
        )
    verdict = "ok" if result["ratio"] >= 0.8 and result["validate_p99"] <= 20 else "MISSED"
    print(
        f"{label:5s} median : /healthz {result['healthz_rps']:6.0f}/s p99 {result['healthz_p99']:5.1f} ms; "
        f"warm /validate {result['validate_rps']:6.0f}/s p99 {result['validate_p99']:5.1f} ms; "
        f"ratio {result['ratio']:.3f}x (target >= 0.800x, p99 <= 20 ms: {verdict})"
    )


# --- 2. slow clients -------------------------------------------------------------------------------------


def _probe_healthz(hook: ServedWebhook, seconds: float) -> tuple[list[float], int]:
    """Sequential /healthz probes on new TLS connections for `seconds`: latencies and failures."""
    latencies, failures = [], 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPSConnection(hook.host, hook.port, context=hook.ssl_context(), timeout=10)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            failures += 1
        time.sleep(0.02)
    return latencies, failures


class SlowClients:
    """SLOW_CLIENTS connections in four kinds, spread over SLOW_ADDRESSES loopback source addresses (under
    the per-client cap, so the server has to hold them all)."""

    def __init__(self, hook: ServedWebhook, count: int = SLOW_CLIENTS):
        self.hook = hook
        self.count = count
        self.socks: list[socket.socket] = []
        self.trickling: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        context = self.hook.ssl_context()
        for index in range(self.count):
            source = (f"127.0.{1 + index % SLOW_ADDRESSES}.{1 + index // SLOW_ADDRESSES % 250}", 0)
            address = (self.hook.host, self.hook.port)
            raw = socket.create_connection(address, timeout=10, source_address=source)
            kind = index % 4
            if kind == 0:
                raw.sendall(b"\x16\x03\x01\x02\x00")  # a stalled handshake
                self.socks.append(raw)
            elif kind == 3:
                self.socks.append(raw)  # silent TCP
            else:
                tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
                self.socks.append(tls)
                if kind == 2:
                    tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
                    self.trickling.append(tls)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(0.5):
            for sock in self.trickling:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")

    def held(self) -> int:
        """How many of the connections the server still holds open."""
        return sum(_open(sock) for sock in self.socks)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


def _open(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return True
    try:
        if isinstance(sock, ssl.SSLSocket):
            sock.setblocking(False)
            return sock.recv(1) != b""
        return sock.recv(1, socket.MSG_PEEK) != b""
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return True
    except OSError:
        return False


def slow_clients(hook: ServedWebhook) -> dict:
    alone, alone_failed = _probe_healthz(hook, 3.0)
    with SlowClients(hook) as slow:
        load = _load()
        during, failed = _probe_healthz(hook, 8.0)
        held = slow.held()
    return {
        "alone": alone,
        "alone_failed": alone_failed,
        "during": during,
        "failed": failed,
        "held": held,
        "load": load,
    }


# --- 3 and 4: memory ------------------------------------------------------------------------------------


def expansion_peak(hook: ServedWebhook, s3_host_port: str) -> dict:
    pid = _worker(hook)
    before = _status(pid, "VmRSS")
    body = json.dumps(build_review(_doubling(s3_host_port, EXPANSION_LEVELS))).encode()
    conn = hook.connection()
    statuses, started = [], time.perf_counter()
    for _ in range(EXPANSION_POSTS):
        status, answer = hook.post_raw(body, conn=conn)
        statuses.append((status, json.loads(answer)["response"]["status"]["code"]))
    conn.close()
    return {
        "bytes": len(body),
        "before": before,
        "peak": _status(pid, "VmHWM"),
        "after": _status(pid, "VmRSS"),
        "answers": sorted(set(statuses)),
        "seconds": time.perf_counter() - started,
    }


def distinct_admissions(hook: ServedWebhook, s3_host_port: str) -> dict:
    pid = _worker(hook)
    before = _status(pid, "VmRSS")
    conn = hook.connection()
    template = json.dumps(build_review(_gpu_mismatch(s3_host_port, "FILLER")))
    filler = "z" * DISTINCT_BYTES
    for index in range(DISTINCT_ADMISSIONS):
        body = template.replace('"FILLER"', f'"{index}{filler}"', 1).encode()
        status, _ = hook.post_raw(body, conn=conn)
        if status != 200:
            raise RuntimeError(f"distinct admission {index} answered {status}")
    conn.close()
    after = _status(pid, "VmRSS")
    entries = hook.metric('tfs_webhook_cache_entries{cache="decisions"}')
    time.sleep(SHORT_TTL_SECONDS + 6)  # the TTL, then the sweeper's next round
    return {
        "before": before,
        "after": after,
        "peak": _status(pid, "VmHWM"),
        "entries": entries,
        "after_ttl": _status(pid, "VmRSS"),
        "entries_after_ttl": hook.metric('tfs_webhook_cache_entries{cache="decisions"}'),
    }


# --- 5. soak ---------------------------------------------------------------------------------------------


def soak(hook: ServedWebhook, s3_host_port: str, seconds: float) -> dict:
    bodies = [json.dumps(build_review(_deployment(s3_host_port, "warm"))).encode()] * 5
    bodies += [
        json.dumps(build_review(_gpu_mismatch(s3_host_port, f"v{index}"))).encode() for index in range(40)
    ]
    bodies += [b"{not json", b"null", json.dumps({"apiVersion": "admission.k8s.io/v1"}).encode()]
    pid = _worker(hook)
    warmup_end = time.monotonic() + seconds / 5
    end = time.monotonic() + seconds
    interval = CONCURRENCY / SOAK_RATE
    counts = {"sent": 0, "errors": 0}
    marks: dict[str, tuple[float, int]] = {}
    lock = threading.Lock()

    def client(offset: int) -> None:
        conn = hook.connection()
        next_at = time.monotonic() + offset * interval / CONCURRENCY
        index = offset
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            body = bodies[index % len(bodies)]
            index += CONCURRENCY
            try:
                status, _ = hook.post_raw(body, conn=conn)
                ok = status in (200, 400)
            except OSError:
                conn.close()
                conn = hook.connection()
                ok = False
            with lock:
                counts["sent"] += 1
                counts["errors"] += not ok
        conn.close()

    def sample() -> tuple[float, int]:
        """RSS and open fds, each the least of 5 samples over 1 s: connections being replaced (S3, the
        Kubernetes API, a client) come and go, a leak stays."""
        samples = []
        for _ in range(5):
            samples.append((_status(pid, "VmRSS"), _fds(pid)))
            time.sleep(0.2)
        return min(rss for rss, _ in samples), min(fds for _, fds in samples)

    def marker() -> None:
        while time.monotonic() < warmup_end:
            time.sleep(0.2)
        marks["start"] = sample()
        while time.monotonic() < end - 1.0:
            time.sleep(0.2)
        marks["end"] = sample()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)]
    threads.append(threading.Thread(target=marker))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (rss0, fd0), (rss1, fd1) = marks["start"], marks["end"]
    return {
        "seconds": seconds,
        "sent": counts["sent"],
        "errors": counts["errors"],
        "rss_start": rss0,
        "rss_end": rss1,
        "fd_start": fd0,
        "fd_end": fd1,
        "load": _load(),
    }


# --- 6. the earlier figures ------------------------------------------------------------------------------


def single_flight(hook: ServedWebhook, s3_host_port: str) -> float:
    flight = _deployment(s3_host_port, "flight")
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
    if answers.count(200) != SINGLE_FLIGHT:
        raise RuntimeError(f"single-flight answers: {answers}")
    return hook.metric("tfs_webhook_s3_checks_total") - checks_before


def cold_checks(env: dict, s3_host_port: str, workdir: Path) -> tuple[list[float], float]:
    cold_env = env | {"WEBHOOK_CACHE_TTL_SECONDS": "0", "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": "0"}
    cold_body = json.dumps(build_review(_deployment(s3_host_port, "cold"), uid="cold")).encode()
    with ServedWebhook(cold_env, workdir=workdir / "cold") as cold:
        conn = cold.connection()
        latencies = []
        deadline = time.monotonic() + 30
        for _ in range(COLD_SAMPLES):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            cold.post_raw(cold_body, conn=conn)
            latencies.append(time.perf_counter() - start)
        conn.close()
        return latencies, cold.metric("tfs_webhook_s3_requests_total") / max(len(latencies), 1)


def stall_probe(stock: bool, threads: int = 4, idle: int = 8) -> float:
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


# --- the run ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook")
    soak_default = float(os.environ.get("BENCH_SOAK_SECONDS", SOAK_SECONDS))
    parser.add_argument("--soak", type=float, default=soak_default, help="soak length in seconds")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", choices=("throughput", "slow", "memory", "soak", "checks"), action="append")
    args = parser.parse_args(argv if argv is not None else [])
    hey_binary()  # fail early
    print(
        "== webhook: `tfs-gitops webhook serve` (gunicorn, 1 worker x 64 threads), "
        f"concurrency {CONCURRENCY}, {os.cpu_count()} cores, {_load()}"
    )
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
            _run(s3, env, workdir, args)
        finally:
            kube.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def _run(s3, env: dict[str, str], workdir: Path, args) -> None:
    only = set(args.only or ("throughput", "slow", "memory", "soak", "checks"))
    warm = workdir / "warm.json"
    warm.write_text(json.dumps(build_review(_deployment(s3.host_port, "warm"), uid="warm")))

    if "throughput" in only:
        rounds = f"hey -c {CONCURRENCY} -z {HEY_SECONDS}s, {args.rounds} rounds"
        print(f"-- 1. warm /validate vs /healthz, {rounds}")
        for tls in (True, False):
            label = "TLS" if tls else "plain"
            with ServedWebhook(env, workdir=workdir / f"hook-{label}", tls=tls) as hook:
                status, body = hook.post_raw(warm.read_bytes())
                assert status == 200 and json.loads(body)["response"]["allowed"], body
                _print_throughput(label, throughput(hook, warm, args.rounds))

    if "slow" in only:
        with ServedWebhook(env, workdir=workdir / "slow") as hook:
            result = slow_clients(hook)
        alone, during = result["alone"], result["during"]
        print(f"-- 2. /healthz on new TLS connections, alone and with {SLOW_CLIENTS} slow clients")
        print(
            f"alone              : p50 {statistics.median(alone) * MS:6.1f} ms  p99 "
            f"{_percentile(alone, 0.99) * MS:6.1f} ms  ({len(alone)} probes, {result['alone_failed']} failed)"
        )
        print(
            f"{SLOW_CLIENTS} slow clients   : p50 {statistics.median(during) * MS:6.1f} ms  p99 "
            f"{_percentile(during, 0.99) * MS:6.1f} ms  max {max(during) * MS:6.1f} ms  "
            f"({len(during)} probes, {result['failed']} failed; {result['held']} slow connections still "
            f"open; {result['load']})"
        )

    if "memory" in only:
        with ServedWebhook(env, workdir=workdir / "expansion") as hook:
            peak = expansion_peak(hook, s3.host_port)
        print(f"-- 3. {EXPANSION_LEVELS}-level doubling env expansion ({peak['bytes']} bytes) posted "
              f"{EXPANSION_POSTS} times")
        print(
            f"worker RSS         : before {peak['before']:.1f} MiB, peak {peak['peak']:.1f} MiB, after "
            f"{peak['after']:.1f} MiB; answers (HTTP, status.code) {peak['answers']}; "
            f"{peak['seconds'] / EXPANSION_POSTS * MS:.1f} ms each"
        )
        short = env | {
            "WEBHOOK_CACHE_TTL_SECONDS": str(SHORT_TTL_SECONDS),
            "WEBHOOK_NEGATIVE_CACHE_TTL_SECONDS": str(SHORT_TTL_SECONDS),
        }
        with ServedWebhook(short, workdir=workdir / "distinct") as hook:
            distinct = distinct_admissions(hook, s3.host_port)
        print(f"-- 4. {DISTINCT_ADMISSIONS} distinct {DISTINCT_BYTES // 1024} KiB admissions (TTL "
              f"{SHORT_TTL_SECONDS} s)")
        print(
            f"worker RSS         : before {distinct['before']:.1f} MiB, after {distinct['after']:.1f} MiB "
            f"(peak {distinct['peak']:.1f} MiB, {distinct['entries']:.0f} cached decisions), after the TTL "
            f"{distinct['after_ttl']:.1f} MiB ({distinct['entries_after_ttl']:.0f} cached)"
        )

    if "soak" in only:
        with ServedWebhook(env, workdir=workdir / "soak") as hook:
            hook.post_raw(warm.read_bytes())
            result = soak(hook, s3.host_port, args.soak)
        print(f"-- 5. soak: {result['seconds']:.0f} s at {SOAK_RATE}/s, mixed allowed/denied/malformed")
        print(
            f"soak               : {result['sent']} admissions, {result['errors']} errors; worker RSS "
            f"{result['rss_start']:.1f} -> {result['rss_end']:.1f} MiB (drift "
            f"{result['rss_end'] - result['rss_start']:+.1f} MiB, target < 5), fds {result['fd_start']} -> "
            f"{result['fd_end']} (drift {result['fd_end'] - result['fd_start']:+d}, target 0); "
            f"{result['load']}"
        )

    if "checks" in only:
        with ServedWebhook(env, workdir=workdir / "flight") as hook:
            flight_checks = single_flight(hook, s3.host_port)
        cold_lat, s3_requests = cold_checks(env, s3.host_port, workdir)
        stock, ours = stall_probe(stock=True), stall_probe(stock=False)
        print("-- 6. storage checks and the keep-alive stall")
        print(
            f"cold check         : p50 {statistics.median(cold_lat) * MS:5.1f} ms  p99 "
            f"{_percentile(cold_lat, 0.99) * MS:5.1f} ms  ({len(cold_lat)} admissions, "
            f"{s3_requests:.1f} S3 requests each, SeaweedFS)"
        )
        print(
            f"single-flight      : {SINGLE_FLIGHT} concurrent identical cold admissions -> "
            f"{flight_checks:.0f} S3 check(s) (target 1)"
        )
        print(
            f"keep-alive stall   : 8 idle TLS connections, 4 threads: stock gthread {stock * MS:6.0f} ms, "
            f"webhook worker {ours * MS:6.1f} ms"
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
