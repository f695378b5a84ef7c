"""Generator benchmark: 1,000 models × 3 environments.

Prints: time to load + render + write the tree into an empty directory (target ≤ 3 s), files written by an
unchanged re-run (target 0) and its time, time of `check`, and peak memory (tracemalloc peak of one
load + render, and the process's peak RSS).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from generator import loader, render, tree

MODELS = 1000
ENVIRONMENTS = ("dev", "staging", "prod")


def catalogue_text(models: int = MODELS) -> str:
    lines = [
        "apiVersion: tfs-gitops/v1alpha1",
        "argocd: {repoURL: https://git.example.com/ml/serving.git}",
        "defaults:",
        "  image: tensorflow/serving:2.6.2",
        "  resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: '1', memory: 1Gi}}",
        "  storage: {endpoint: http://rgw.storage.svc:7480}",
        "environments:",
        "  - {name: dev, overrides: {tfserving: {fileSystemPollWaitSeconds: 5}}}",
        "  - {name: staging, overrides: {replicas: 2}}",
        "  - name: prod",
        "    targetRevision: release",
        "    overrides: {autoscaling: {enabled: true, maxReplicas: 6}}",
        "models:",
    ]
    for index in range(models):
        lines.append(f"  - name: model-{index:04d}")
        lines.append(f"    servingName: model_{index:04d}")
        lines.append(f"    basePath: s3://models/tfserving/model_{index:04d}")
        if index % 10 == 0:
            lines.append("    image: tensorflow/serving:2.6.2-gpu")
            lines.append("    resources: {gpu: 1}")
        if index % 7 == 0:
            lines.append(
                "    environments: {prod: {versionPolicy: {specific: [1, 2]}, versionLabels: {stable: 2}}}"
            )
    return "\n".join(lines) + "\n"


def _generate(catalogue_path: Path, output: Path) -> tuple[float, tree.WriteResult]:
    started = time.perf_counter()
    files = render.render(loader.load(catalogue_path))
    result = tree.write(files, output)
    return time.perf_counter() - started, result


def _bare_write(files: dict[str, str], output: Path) -> float:
    started = time.perf_counter()
    made = set()
    for relative, text in files.items():
        target = output / relative
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(text.encode("utf-8"))
    return time.perf_counter() - started


def _in_memory_runs(catalogue_path: Path) -> list[float]:
    """The same on tmpfs (/dev/shm), where other processes' disk traffic does not interfere."""
    if not Path("/dev/shm").is_dir():
        return []
    with tempfile.TemporaryDirectory(prefix="tfs-bench-", dir="/dev/shm") as temporary:
        return sorted(_generate(catalogue_path, Path(temporary) / f"run-{run}")[0] for run in range(3))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tfs-bench-") as temporary:
        root = Path(temporary)
        catalogue_path = root / "models.yaml"
        catalogue_path.write_text(catalogue_text(), encoding="utf-8")
        output = root / "overlays"

        first_seconds, first = _generate(catalogue_path, output)
        rerun_seconds, rerun = _generate(catalogue_path, output)
        # Writing 16,000 small files is disk-bound and noisy on a shared machine: also take the median of
        # three fresh generations, and a bare baseline writing the same files without compare/rename.
        fresh = sorted(_generate(catalogue_path, root / f"fresh-{run}")[0] for run in range(3))
        baseline_seconds = _bare_write(render.render(loader.load(catalogue_path)), root / "bare")
        in_memory = _in_memory_runs(catalogue_path)

        started = time.perf_counter()
        comparison = tree.compare(render.render(loader.load(catalogue_path)), output)
        check_seconds = time.perf_counter() - started

        started = time.perf_counter()
        catalogue = loader.load(catalogue_path)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        files = render.render(catalogue)
        render_seconds = time.perf_counter() - started

        tracemalloc.start()
        render.render(loader.load(catalogue_path))
        _current, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    deployments = MODELS * len(ENVIRONMENTS)
    print(
        f"generator: {MODELS} models x {len(ENVIRONMENTS)} environments = {deployments} model deployments, "
        f"{len(files)} files"
    )
    print(
        f"  generate into an empty tree : {first_seconds:6.2f} s  ({len(first.written)} files written; "
        f"target <= 3 s) {'OK' if first_seconds <= 3 else 'OVER TARGET'}"
    )
    print(f"    of which load {load_seconds:.2f} s, render {render_seconds:.2f} s, the rest writing")
    print(
        f"  median of 3 more fresh runs : {fresh[1]:6.2f} s  (min {fresh[0]:.2f}, max {fresh[2]:.2f}) "
        f"{'OK' if fresh[1] <= 3 else 'OVER TARGET'}"
    )
    if in_memory:
        print(
            f"  on tmpfs, median of 3       : {in_memory[1]:6.2f} s  (min {in_memory[0]:.2f}, "
            f"max {in_memory[2]:.2f}) {'OK' if in_memory[1] <= 3 else 'OVER TARGET'}"
        )
    print(
        f"  baseline: bare write only   : {baseline_seconds:6.2f} s  (same files, plain open/write; "
        f"generate/baseline = {fresh[1] / baseline_seconds:.2f}x)"
    )
    print(
        f"  unchanged re-run            : {rerun_seconds:6.2f} s  ({len(rerun.written)} files written, "
        f"{len(rerun.deleted)} deleted; target 0) {'OK' if not (rerun.written or rerun.deleted) else 'FAIL'}"
    )
    print(f"  check (no writes)           : {check_seconds:6.2f} s  (clean: {comparison.clean})")
    print(
        f"  peak memory                 : {traced_peak / 2**20:6.1f} MiB traced (load + render), "
        f"{rss_kib / 1024:.1f} MiB peak RSS of the process"
    )
    return 0 if not rerun.written else 1


if __name__ == "__main__":
    sys.exit(main())
