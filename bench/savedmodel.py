"""Benchmark of the SavedModel check over S3 (real SeaweedFS): what one verify costs.

For half_plus_two (12 KB saved_model.pb) and a synthetic 24 MiB saved_model.pb (half_plus_two with a big
constant in its GraphDef): requests and bytes per verify against the file size, and the median verify latency
against a bare list_objects_v2 round trip measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from devtools.s3server import SeaweedFS
from devtools.synthetic import pad_graph_def
from savedmodel import S3Settings, SavedModelChecker, Verdict, VersionPolicy

MODEL_DIR = Path(__file__).resolve().parent.parent / "tests" / "testdata" / "savedmodels"
HALF_PLUS_TWO = MODEL_DIR / "saved_model_half_plus_two_cpu" / "00000123"
BUCKET = "bench-models"
MAX_RUNS = 50
MAX_SECONDS = 8.0
BIG_SIZE = 24 * 1024 * 1024


def _files(version_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(version_dir)): p.read_bytes() for p in sorted(version_dir.rglob("*")) if p.is_file()
    }


def _timed(action) -> list[float]:
    """Latencies of `action()` in seconds, bounded in count and time (after one warm-up call)."""
    action()
    samples: list[float] = []
    started = time.monotonic()
    while len(samples) < MAX_RUNS and time.monotonic() - started < MAX_SECONDS:
        t0 = time.perf_counter()
        action()
        samples.append(time.perf_counter() - t0)
    return samples


def _upload(client, prefix: str, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)


def run() -> list[dict]:
    small = _files(HALF_PLUS_TWO)
    big = dict(small)
    big["saved_model.pb"] = pad_graph_def(small["saved_model.pb"], BIG_SIZE - len(small["saved_model.pb"]))
    rows = []
    with SeaweedFS() as endpoint:
        client = endpoint.client()
        client.create_bucket(Bucket=BUCKET)
        _upload(client, "half_plus_two/00000123", small)
        _upload(client, "big/00000123", big)
        checker = SavedModelChecker(S3Settings.from_env(endpoint.env()))
        for label, prefix, files in (
            ("half_plus_two", "half_plus_two", small),
            ("24 MiB saved_model.pb", "big", big),
        ):
            base = f"s3://{BUCKET}/{prefix}"
            report = checker.verify(base, VersionPolicy("latest"), signature="serving_default")
            if report.verdict is not Verdict.VALID:
                raise RuntimeError(f"benchmark model {base} is not valid: {report.to_json()}")
            verify_times = _timed(
                lambda b=base: checker.verify(b, VersionPolicy("latest"), signature="serving_default")
            )
            list_times = _timed(
                lambda p=prefix: client.list_objects_v2(Bucket=BUCKET, Prefix=f"{p}/", Delimiter="/")
            )
            rows.append(
                {
                    "model": label,
                    "saved_model_bytes": len(files["saved_model.pb"]),
                    "requests": report.stats.requests,
                    "bytes_received": report.stats.bytes_received,
                    "verify_median_ms": statistics.median(verify_times) * 1000,
                    "list_median_ms": statistics.median(list_times) * 1000,
                    "runs": len(verify_times),
                }
            )
    return rows


def main() -> None:
    print("SavedModel verify over S3 (SeaweedFS on loopback, policy latest, signature serving_default)")
    for row in run():
        share = row["bytes_received"] / row["saved_model_bytes"]
        ratio = row["verify_median_ms"] / row["list_median_ms"]
        print(
            f"  {row['model']}: saved_model.pb {row['saved_model_bytes']:,} B; per verify "
            f"{row['requests']} requests, {row['bytes_received']:,} B received "
            f"({share:.2%} of the file); median verify {row['verify_median_ms']:.1f} ms vs bare "
            f"list_objects_v2 {row['list_median_ms']:.1f} ms = {ratio:.1f}x ({row['runs']} runs)"
        )


if __name__ == "__main__":
    main()
