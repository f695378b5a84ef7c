"""The demo's model-delivery section: `tfs-gitops publish` (and what it refuses), and the sync sidecar
picking up a version that is uploaded file by file, watched by inotify on the directory TF Serving reads.

Every `$ tfs-gitops ...` line is that command's real output; the sidecar's lines are its real log.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from devtools.dirwatch import DirWatch
from devtools.s3server import S3Endpoint
from rulebook.names import ModelMetrics
from rulebook.policy import parse_version_name
from savedmodel import check_local_version

BUCKET = "models"
PREFIX = "delivery/half_plus_two"
BASE = f"s3://{BUCKET}/{PREFIX}"


class Sidecar:
    """`tfs-gitops sync ...` in the background; its log lines are printed as they come."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        print(f"$ {shlex.join(args)} &", flush=True)
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            print(f"  [sidecar] {line}", flush=True)
            with self._seen:
                self.lines.append(line)
                match = re.search(r"on ([\d.]+):(\d+)$", line)
                if match and "serving /healthz" in line:
                    self.url = f"http://{match.group(1)}:{match.group(2)}"
                self._seen.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise SystemExit(f"demo: the sidecar did not log {pattern!r} within {timeout:.0f} s")
                self._seen.wait(remaining)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code


def complete_versions_only(dest: Path, incomplete: list[str]):
    def check(_path: Path) -> None:
        for entry in list(dest.iterdir()):
            if parse_version_name(entry.name) is None:
                continue
            try:
                report = check_local_version(entry)
            except FileNotFoundError:
                continue
            if not report.valid:
                incomplete.append(f"{entry.name}: {report.reasons[0]}")

    return check


def demo_delivery(
    endpoint: S3Endpoint, env: dict[str, str], run, heading, work: Path, model: Path, root: Path
) -> None:
    heading("10. Model delivery: tfs-gitops publish instead of tar + s3cmd put --recursive")
    run(["tfs-gitops", "publish", str(model.relative_to(root)), BASE, "--version", "123"], env)
    run(["tfs-gitops", "publish", str(model.relative_to(root)), BASE], env)
    broken = work / "broken" / "125"
    shutil.copytree(model, broken)
    (broken / "variables" / "variables.index").unlink()
    run(["tfs-gitops", "publish", str(broken.relative_to(root)), BASE], env, expect=(1,))
    run(["tfs-gitops", "publish", str(model.relative_to(root)), BASE, "--version", "124"], env, expect=(1,))
    run(["tfs-gitops", "verify", BASE, "--policy", "all"], env)

    heading("11. The sync sidecar: version 125 is uploaded file by file, saved_model.pb first")
    dest = work / "models" / "half_plus_two"
    dest.mkdir(parents=True)
    incomplete: list[str] = []
    args = [
        "tfs-gitops",
        "sync",
        BASE,
        str(dest.relative_to(root)),
        "--policy",
        "latest",
        "--interval",
        "1",
        "--prune-after",
        "2",
        "--listen",
        "127.0.0.1:0",
    ]
    with DirWatch(dest, complete_versions_only(dest, incomplete)) as watch:
        sidecar = Sidecar(args, dict(env, PYTHONUNBUFFERED="1"), root)
        try:
            sidecar.wait_for(r"half_plus_two: .*in place \[124\], ready")
            client = endpoint.client()
            order = [
                "saved_model.pb",
                "assets/foo.txt",
                "variables/variables.index",
                "variables/variables.data-00000-of-00001",
            ]
            print("(simulated: a person uploading 125/ file by file, as s3cmd put --recursive does)")
            for name in order:
                client.upload_file(str(model / name), BUCKET, f"{PREFIX}/125/{name}")
                print(f"  uploaded {BASE}/125/{name}", flush=True)
                time.sleep(1.5)  # a slow upload: the sidecar polls every second in between
            sidecar.wait_for(r"version 125 in place")
            sidecar.wait_for(r"version 124 removed")
            print_metrics(sidecar.url)
        finally:
            code = sidecar.stop()
    present = sorted(p.name for p in dest.iterdir())
    print(f"the directory TF Serving reads now holds: {', '.join(present)}")
    print(
        f"inotify watcher on {dest.relative_to(root)}: {watch.events} changes checked, "
        f"{len(incomplete)} incomplete version directories seen"
    )
    if incomplete or present != ["125"] or code != 0:
        raise SystemExit(f"demo: expected only 125, complete, and a clean exit; got {present}, {incomplete}")


def print_metrics(url: str | None) -> None:
    if url is None:
        return
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    names = (
        ModelMetrics.NEWEST_VERSION,
        ModelMetrics.DESIRED_VERSIONS,
        ModelMetrics.PRESENT_VERSIONS,
        ModelMetrics.INVALID_VERSIONS,
        ModelMetrics.NEXT_LOAD_VALID,
    )
    print(f"GET {url}/metrics (excerpt):")
    for line in text.splitlines():
        if line.startswith(names):
            print(f"  {line}")
