"""Per-request S3 latency of the test server: the figures in docs/integration.md.

    .venv/bin/python -m devtools.rgw_latency                          # SeaweedFS, started here
    scripts/rgw.sh run -- .venv/bin/python -m devtools.rgw_latency    # Ceph RGW

Each operation runs up to 200 times (at most 10 s) on one kept-alive boto3 connection; prints median and p90.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable

from devtools.s3server import S3Endpoint, SeaweedFS, from_environment

ROUNDS = 200
SECONDS_PER_OPERATION = 10.0


def operations(endpoint: S3Endpoint) -> dict[str, Callable[[], object]]:
    s3 = endpoint.client()
    bucket = f"latency-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="m/1/saved_model.pb", Body=os.urandom(1 << 20))
    for version in (2, 3):
        s3.put_object(Bucket=bucket, Key=f"m/{version}/saved_model.pb", Body=b"x")
    return {
        "list_objects_v2 with Delimiter": lambda: s3.list_objects_v2(
            Bucket=bucket, Prefix="m/", Delimiter="/"),
        "head_object": lambda: s3.head_object(Bucket=bucket, Key="m/1/saved_model.pb"),
        "ranged GET of 64 KiB": lambda: s3.get_object(
            Bucket=bucket, Key="m/1/saved_model.pb", Range="bytes=0-65535")["Body"].read(),
        "put_object of 1 KiB": lambda: s3.put_object(Bucket=bucket, Key="put", Body=b"x" * 1024),
    }


def measure(operation: Callable[[], object]) -> list[float]:
    operation()  # warm the connection
    timings: list[float] = []
    deadline = time.monotonic() + SECONDS_PER_OPERATION
    while len(timings) < ROUNDS and time.monotonic() < deadline:
        started = time.perf_counter()
        operation()
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)


def report(endpoint: S3Endpoint) -> None:
    print(f"S3 latency against {endpoint.backend} at {endpoint.url}")
    for name, operation in operations(endpoint).items():
        timings = measure(operation)
        p90 = timings[min(len(timings) - 1, int(len(timings) * 0.9))]
        median = statistics.median(timings)
        print(f"  {name:32s} median {median:6.2f} ms   p90 {p90:6.2f} ms   n={len(timings)}")


def main() -> None:
    endpoint = from_environment()
    if endpoint is not None:
        report(endpoint)
        return
    with SeaweedFS() as seaweedfs:
        report(seaweedfs)


if __name__ == "__main__":
    main()
