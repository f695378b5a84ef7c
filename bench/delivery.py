"""Benchmark of model delivery (real SeaweedFS on loopback): publish and sync of a 1 GiB model against plain
boto3 `upload_file`/`download_file` of the same objects, and the sync sidecar's peak memory.

The model is half_plus_two with four 256 MiB variable shards (devtools.synthetic.sharded_model), generated
into a temporary directory and removed at the end, as is everything downloaded; objects are deleted from
the bucket between rounds. Each transfer runs `ROUNDS` times, ours and the baseline alternating which goes
first; the best and the median time of each are compared (throughput ratio = baseline time / our time;
the target is >= 0.9). Publish's time includes everything it does beyond the upload: the listing, the
contract check of the local model, completing the multipart uploads (saved_model.pb last), the checks of
what landed and `verify`; it also reports how long the numbered directory was listed without
saved_model.pb. Sync's includes the listing, the contract checks before and after, fsync and rename.

Peak RSS is the VmHWM of a `tfs-gitops sync --once` process (the init container; the sidecar runs
the same pass) for half_plus_two (12 KB) and for the 1 GiB model: it must not grow with the model (target
<= 150 MiB).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from delivery.publish import Publisher
from delivery.sync import ModelSpec, ModelSync
from delivery.transfer import transfer_store
from devtools.s3server import S3Endpoint, SeaweedFS, from_environment
from devtools.synthetic import sharded_model
from rulebook.policy import VersionPolicy
from savedmodel import S3Settings

ROOT = Path(__file__).resolve().parent.parent
HALF_PLUS_TWO = ROOT / "tests" / "testdata" / "savedmodels" / "saved_model_half_plus_two_cpu" / "00000123"
BUCKET = "bench-delivery"
MiB = 1024 * 1024
SHARDS = 4
SHARD_BYTES = 256 * MiB
ROUNDS = int(os.environ.get("TFS_BENCH_ROUNDS", "3"))
JOBS = 10  # boto3's default concurrency, and ours


def _files(version_dir: Path) -> list[Path]:
    return sorted(p for p in version_dir.rglob("*") if p.is_file())


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _empty_bucket(client) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})


def _baseline_upload(client, model: Path, prefix: str) -> None:
    for path in _files(model):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(model).as_posix()}")


def _baseline_download(client, prefix: str, dest: Path) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            target = dest / item["Key"][len(prefix) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, item["Key"], str(target))


def _publish(store, model: Path, base: str) -> float:
    """Publish; returns how long the numbered directory was listed without saved_model.pb (at most)."""
    publisher = Publisher(store, jobs=JOBS)
    return publisher.publish(publisher.plan(model, base)).incomplete_seconds


def _sync(store, base: str, dest: Path) -> None:
    state = ModelSync(ModelSpec("bench", base, VersionPolicy("latest"), dest), store, jobs=JOBS).run_pass()
    if not state.ready:
        raise RuntimeError(f"sync did not complete: {state.error or state.reasons}")


# The process reports its own VmHWM (peak resident set since exec) as it exits. Not wait4's ru_maxrss: on
# exec Linux folds the parent's high-water mark into it (a 200 MiB parent makes `python -c pass` "use"
# 200 MiB).
_LAUNCH = """
import atexit, os, sys
def report():
    status = open("/proc/self/status").read()
    peak_kib = int(status.split("VmHWM:")[1].split()[0])
    with open(os.environ["TFS_BENCH_PEAK_FILE"], "w") as out:
        out.write(str(peak_kib))
atexit.register(report)
from tfs_gitops.cli import main
sys.argv[0] = "tfs-gitops"
main()
"""


def _peak_rss_mib(endpoint: S3Endpoint, base: str, dest: Path) -> float:
    """Peak resident memory of `tfs-gitops sync --once` (the init container; the sidecar runs the same
    pass)."""
    peak_file = dest.parent / f"{dest.name}.peak"
    command = [sys.executable, "-c", _LAUNCH, "sync", base, str(dest), "--once", "--jobs", str(JOBS)]
    env = dict(os.environ, **endpoint.env(), TFS_BENCH_PEAK_FILE=str(peak_file))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sync --once exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
    peak = int(peak_file.read_text()) / 1024
    peak_file.unlink()
    return peak


@contextlib.contextmanager
def _server(work: Path):
    """SeaweedFS on loopback, or the server scripts/rgw.sh started (TFS_TEST_S3_URL): the same benchmark
    against Ceph RGW is `scripts/rgw.sh run -- .venv/bin/python -m bench delivery`."""
    external = from_environment()
    if external is not None:
        yield external
        return
    with SeaweedFS(workdir=work / "s3") as endpoint:
        yield endpoint


def run() -> dict:
    work = Path(tempfile.mkdtemp(prefix="tfs-bench-delivery-"))
    try:
        model = sharded_model(HALF_PLUS_TWO, work / "model" / "00000001", SHARDS, SHARD_BYTES)
        size = sum(p.stat().st_size for p in _files(model))
        times: dict[str, list[float]] = {"upload_file": [], "publish": [], "download_file": [], "sync": []}
        incomplete: list[float] = []
        with _server(work) as endpoint:
            client = endpoint.client()
            client.create_bucket(Bucket=BUCKET)
            store = transfer_store(S3Settings.from_env(endpoint.env()), jobs=JOBS)
            for round_number in range(ROUNDS):
                ours_first = round_number % 2 == 1
                uploads = [
                    ("upload_file", lambda: _baseline_upload(client, model, "baseline/1")),
                    ("publish", lambda: incomplete.append(_publish(store, model, f"s3://{BUCKET}/model"))),
                ]
                for name, action in reversed(uploads) if ours_first else uploads:
                    times[name].append(_timed(action))
                downloads = [
                    ("download_file", lambda: _baseline_download(client, "baseline/1", work / "baseline")),
                    ("sync", lambda: _sync(store, f"s3://{BUCKET}/model", work / "synced")),
                ]
                for name, action in reversed(downloads) if ours_first else downloads:
                    times[name].append(_timed(action))
                    shutil.rmtree(work / "baseline", ignore_errors=True)
                    shutil.rmtree(work / "synced", ignore_errors=True)
                _empty_bucket(client)
            _publish(store, model, f"s3://{BUCKET}/model")
            shutil.rmtree(work / "model")  # the disk holds one copy at a time
            big_rss = _peak_rss_mib(endpoint, f"s3://{BUCKET}/model", work / "rss-big")
            shutil.rmtree(work / "rss-big")
            _publish(store, HALF_PLUS_TWO, f"s3://{BUCKET}/small")
            small_rss = _peak_rss_mib(endpoint, f"s3://{BUCKET}/small", work / "rss-small")
            _empty_bucket(client)
        return {
            "bytes": size,
            "times": times,
            "incomplete": incomplete,
            "rss_small": small_rss,
            "rss_big": big_rss,
            "backend": endpoint.backend,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    print(
        f"Model delivery, {SHARDS} x {SHARD_BYTES // MiB} MiB shards + half_plus_two (S3 on loopback, "
        f"{JOBS} jobs, {ROUNDS} rounds, order alternating; load average {_load()} at the start)"
    )
    result = run()
    mib = result["bytes"] / MiB
    times = result["times"]

    def line(ours: str, baseline: str) -> str:
        best = min(times[baseline]) / min(times[ours])
        median = statistics.median(times[baseline]) / statistics.median(times[ours])
        verdict = "meets" if best >= 0.9 else "BELOW"
        return (
            f"  {ours}: {mib / min(times[ours]):.1f} MiB/s ({min(times[ours]):.2f} s) vs boto3 {baseline} "
            f"{mib / min(times[baseline]):.1f} MiB/s ({min(times[baseline]):.2f} s) = {best:.2f}x best, "
            f"{median:.2f}x median ({verdict} the 0.9x target; all runs: ours "
            f"{', '.join(f'{t:.2f}' for t in times[ours])} s, baseline "
            f"{', '.join(f'{t:.2f}' for t in times[baseline])} s)"
        )

    print(f"  S3 server: {result['backend']}")
    print(f"  model: {result['bytes']:,} bytes in {len(_files(HALF_PLUS_TWO)) + SHARDS - 1} files")
    print(line("publish", "upload_file"))
    print(
        "  publish: the numbered directory was listed without saved_model.pb for at most "
        f"{max(result['incomplete']) * 1000:.0f} ms (runs: "
        f"{', '.join(f'{s * 1000:.0f}' for s in result['incomplete'])} ms)"
    )
    print(line("sync", "download_file"))
    verdict = "meets" if result["rss_big"] <= 150 else "ABOVE"
    print(
        f"  sync --once peak RSS: {result['rss_big']:.1f} MiB for the {mib:.0f} MiB model, "
        f"{result['rss_small']:.1f} MiB for half_plus_two ({verdict} the 150 MiB target)"
    )
    print(f"  load average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
