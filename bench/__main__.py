"""Run every benchmark in turn: `python -m bench [NAME ...]`.

Names: generator, savedmodel, webhook, delivery, preview."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("generator", "savedmodel", "webhook", "delivery", "preview")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    failed = []
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.main()
        except Exception as exc:  # noqa: BLE001 - report and go on with the next benchmark
            failed.append(name)
            print(f"bench {name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"(bench {name}: {time.perf_counter() - started:.1f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
