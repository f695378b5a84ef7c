"""Pull-request preview benchmark, every figure against a baseline measured in the same run.

1. `tfs-gitops diff` of the 1,000 models × 3 environments catalogue (bench/generator.py) with one model
   promoted in prod, against `tfs-gitops generate` of the same catalogue into an empty directory
   (target: diff ≤ 2.5 × generate). Both run as the command a person runs, median of 3.
2. `tfs-gitops verify -c` of 1,000 models held in SeaweedFS, checked in parallel (16 connections), against
   the same checks run one by one (--max-connections 1) (targets: ≥ 4 × faster, ≤ 10 s). CPU time of the
   command and of SeaweedFS is printed too: on loopback the checks are CPU-bound, and those times bound what
   parallelism can gain (the "ceiling" line: the best ratio a client using no CPU at all could reach).
   Then the same passes with a simulated network latency (a proxy delaying each request), labelled as
   such: that is what the parallelism is for.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.generator import ENVIRONMENTS, MODELS, catalogue_text
from devtools.faultproxy import FaultProxy
from devtools.gitrepo import GitRepo
from devtools.s3server import SeaweedFS

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "testdata" / "savedmodels" / "saved_model_half_plus_two_cpu" / "00000123"
RUNS = 3
BUCKET = "bench-catalogue"
PARALLEL = 16  # tfs-gitops verify's default --max-connections
ROUNDS = 2  # of (parallel, one by one)
LATENCY = 0.005  # seconds added to each request in the simulated-latency passes
UPLOADERS = 10  # botocore's default connection pool: more threads would open and discard connections
PROMOTED = (
    "  - name: model-0007\n"  # bench/generator.py pins it in prod to {specific: [1, 2]}, label stable 2
)


def tfs_gitops() -> str:
    found = shutil.which("tfs-gitops")
    if found is None:
        raise RuntimeError("tfs-gitops not on PATH (run through `make bench`)")
    return found


def timed(args: list[str], cwd: Path, env: dict | None = None, expect: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode not in expect:
        raise RuntimeError(f"{' '.join(args[1:3])} exited {completed.returncode}: {completed.stderr[-2000:]}")
    return seconds


def promoted(text: str) -> str:
    start = text.index(PROMOTED)
    end = text.index("  - name:", start + 1)
    model = text[start:end]
    changed = model.replace("{specific: [1, 2]}", "{specific: [2, 3]}").replace("{stable: 2}", "{stable: 3}")
    assert changed != model, "bench/generator.py no longer pins model-0007 in prod"
    return text[:start] + changed + text[end:]


def bench_diff(root: Path) -> None:
    repo = GitRepo(root / "repo")
    text = catalogue_text()
    repo.commit({"models.yaml": text}, "1,000 models")
    repo.branch("promote")
    repo.write({"models.yaml": promoted(text)})
    program = tfs_gitops()
    generate = []
    for run in range(RUNS):
        out = repo.path / f"generated-{run}"  # inside the repository, where Argo CD can read it
        generate.append(timed([program, "generate", "-c", "models.yaml", "--out-dir", str(out)], repo.path))
        shutil.rmtree(out)
    diff = [timed([program, "diff", "--base", "main"], repo.path) for _ in range(RUNS)]
    output = subprocess.run(
        [program, "diff", "--base", "main"], cwd=repo.path, capture_output=True, text=True, check=True
    ).stdout
    summary = [line for line in output.splitlines() if line.startswith(("==", "~"))]
    ratio = statistics.median(diff) / statistics.median(generate)
    print(
        f"diff: {MODELS} models x {len(ENVIRONMENTS)} environments, one model promoted in prod "
        f"({'; '.join(summary)})"
    )
    print(
        f"  tfs-gitops generate (empty dir): median {statistics.median(generate):5.2f} s  {_runs(generate)}"
    )
    print(f"  tfs-gitops diff                : median {statistics.median(diff):5.2f} s  {_runs(diff)}")
    print(f"  diff / generate = {ratio:.2f}x (target <= 2.5x) {'OK' if ratio <= 2.5 else 'OVER TARGET'}")


def catalogue_in_s3(url: str, models: int) -> str:
    lines = [
        "apiVersion: tfs-gitops/v1alpha1",
        "argocd: {repoURL: https://git.example.com/ml/serving.git}",
        f"defaults: {{storage: {{endpoint: '{url}'}}}}",
        "environments: [{name: prod}]",
        "models:",
    ]
    for index in range(models):
        lines += [f"  - name: model-{index:04d}", f"    basePath: s3://{BUCKET}/model_{index:04d}"]
    return "\n".join(lines) + "\n"


def upload(endpoint, models: int) -> None:
    files = {p.relative_to(MODEL).as_posix(): p.read_bytes() for p in sorted(MODEL.rglob("*")) if p.is_file()}
    client = endpoint.client()
    client.create_bucket(Bucket=BUCKET)
    objects = [
        (f"model_{index:04d}/00000001/{name}", body)
        for index in range(models)
        for name, body in files.items()
    ]
    with ThreadPoolExecutor(max_workers=UPLOADERS) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]), objects))


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds every process on the machine has used since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Pass:
    label: str
    seconds: float
    command: float  # CPU seconds of the tfs-gitops process
    seaweed: float  # CPU seconds of SeaweedFS during the pass
    others: float  # CPU seconds of every other process during the pass
    load: tuple[float, float]  # 1-minute load average before and after


def bench_verify(root: Path) -> None:
    server = SeaweedFS(workdir=root / "s3")
    endpoint = server.start()
    try:
        started = time.perf_counter()
        upload(endpoint, MODELS)
        print(f"verify: {MODELS} models uploaded to SeaweedFS in {time.perf_counter() - started:.1f} s")
        env = dict(os.environ, **endpoint.env())
        passes = _verify_passes(root, endpoint.url, env, server.pid)
        _print_loopback(passes)
        with FaultProxy(endpoint.url) as proxy:
            proxy.set_fault("delay", seconds=LATENCY)
            passes = _verify_passes(root, proxy.url, env, server.pid)
        _print_latency(passes)
    finally:
        server.stop()


def _verify_passes(root: Path, url: str, env: dict, server_pid: int) -> list[Pass]:
    """Parallel and one by one, alternately, ROUNDS times: both see the same machine, on average."""
    catalogue = root / "models.yaml"
    catalogue.write_text(catalogue_in_s3(url, MODELS))
    passes = []
    for _ in range(ROUNDS):
        for label, connections in (("parallel", PARALLEL), ("one by one", 1)):
            args = [tfs_gitops(), "verify", "-c", str(catalogue), "--max-connections", str(connections)]
            load, busy = os.getloadavg()[0], machine_busy()
            client, seaweed = children_cpu(), server_cpu(server_pid)
            seconds = timed(args, root, env)
            client, seaweed = children_cpu() - client, server_cpu(server_pid) - seaweed
            others = max(0.0, machine_busy() - busy - client - seaweed)
            passes.append(Pass(label, seconds, client, seaweed, others, (load, os.getloadavg()[0])))
    return passes


def _print_loopback(passes: list[Pass]) -> None:
    for p in passes:
        print(
            f"  tfs-gitops verify -c, {p.label:<10}: {p.seconds:6.2f} s  (CPU: command {p.command:5.2f} s, "
            f"SeaweedFS {p.seaweed:5.2f} s, other processes {p.others:5.2f} s; "
            f"load average {p.load[0]:.1f} -> {p.load[1]:.1f})"
        )
    serial, parallel = _mean(passes, "one by one"), _mean(passes, "parallel")
    ratio = serial / parallel
    print(
        f"  one by one / parallel ({PARALLEL} connections), mean of {ROUNDS} each = {ratio:.2f}x "
        f"(target >= 4x) {'OK' if ratio >= 4 else 'BELOW TARGET'}; parallel {parallel:.2f} s "
        f"(target <= 10 s) {'OK' if parallel <= 10 else 'OVER TARGET'}"
    )
    cores = os.cpu_count() or 1
    both = statistics.mean(p.command + p.seaweed for p in passes if p.label == "parallel") / cores
    others = max(p.others for p in passes)
    print(
        f"  floor: the checks are CPU-bound on loopback, so no parallel pass beats the command's and "
        f"SeaweedFS's CPU over {cores} cores ({both:.2f} s);\n    the 1-minute load average lags: CPU "
        f"used by other processes during a pass (up to {others:.2f} s here) is what shared the cores"
    )
    print(f"  ceiling: {_ceiling(passes, cores)}")


def _ceiling(passes: list[Pass], cores: int) -> str:
    """The best ratio any client could reach against this server, from this run's figures: a client using
    no CPU at all would shorten the one-by-one pass by at most its own CPU, and could not make a parallel
    pass shorter than SeaweedFS's CPU spread over every core."""
    serial = [p for p in passes if p.label == "one by one"]
    parallel = [p for p in passes if p.label == "parallel"]
    serial_left = statistics.mean(p.seconds - p.command for p in serial)
    server_floor = statistics.mean(p.seaweed for p in parallel) / cores
    return (
        f"one by one minus the command's own CPU leaves {serial_left:.2f} s; SeaweedFS alone needs "
        f"{server_floor:.2f} s of {cores} cores for a parallel pass, so no client reaches more than "
        f"{serial_left / server_floor:.2f}x here"
    )


def _print_latency(passes: list[Pass]) -> None:
    print(
        f"  simulated network latency: the same passes through devtools/faultproxy.py delaying each request "
        f"{LATENCY * 1000:.0f} ms (loopback has none; a remote S3 or RGW has more)"
    )
    for p in passes:
        print(f"  tfs-gitops verify -c, {p.label:<10}: {p.seconds:6.2f} s  (load average {p.load[0]:.1f})")
    ratio = _mean(passes, "one by one") / _mean(passes, "parallel")
    print(f"  one by one / parallel ({PARALLEL} connections), mean of {ROUNDS} each = {ratio:.2f}x")


def _mean(passes: list[Pass], label: str) -> float:
    return statistics.mean(p.seconds for p in passes if p.label == label)


def _load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def _runs(samples: list[float]) -> str:
    return "(" + ", ".join(f"{s:.2f}" for s in samples) + ")"


def main(parts: list[str] | None = None) -> int:
    """Both parts, or those named (`python -m bench.preview verify`)."""
    parts = parts or ["diff", "verify"]
    print(f"({os.cpu_count()} cores, load average {_load()}: other processes share them)")
    with tempfile.TemporaryDirectory(prefix="tfs-bench-preview-") as temporary:
        root = Path(temporary)
        if "diff" in parts:
            bench_diff(root)
        if "verify" in parts:
            bench_verify(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
