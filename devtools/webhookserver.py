"""Run the webhook under gunicorn over TLS on a free loopback port (for tests, the bench and the demo).

    with ServedWebhook(env={"WEBHOOK_ALLOWED_S3_ENDPOINTS": url}) as hook:
        status, body = hook.post(build_review(deployment))

It starts `tfs-gitops webhook serve` exactly as the manifests do (same gunicorn configuration), with a fresh
local CA and serving certificate, and stops it by its own process id.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.processes import stop_process_group
from devtools.s3server import free_port
from webhook.certs import make_certs

APPS = {"validate": "webhook.app:create_app", "allow-all": "devtools.allowall:create_app"}


class ServedWebhook:
    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        app: str = "validate",
        threads: int | None = None,
        workers: int | None = None,
        stock_gthread: bool = False,
        workdir: str | os.PathLike | None = None,
        startup_timeout: float = 20.0,
        tls: bool = True,
    ):
        self.env = env or {}
        self.tls = tls
        self.app = app
        self.threads = threads
        self.workers = workers
        self.stock_gthread = stock_gthread
        self.port = free_port()
        self.host = "127.0.0.1"
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tfs-webhook-"))
        self.certs = make_certs(self.workdir / "certs", ("localhost", "127.0.0.1"))
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "webhook.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def start(self) -> ServedWebhook:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
        env.update(self.env)
        env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
        argv = self._command()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready()
        return self

    def _command(self) -> list[str]:
        """The production command (`tfs-gitops webhook serve`) for the real app; the same gunicorn settings
        through webhook.server.run for the allow-all baseline and the stock gthread worker (bench only)."""
        tls = {"certfile": str(self.certs.cert), "keyfile": str(self.certs.key)} if self.tls else {}
        if self.app == "validate" and not self.stock_gthread:
            argv = [
                sys.executable,
                "-m",
                "tfs_gitops",
                "webhook",
                "serve",
                "--bind",
                f"{self.host}:{self.port}",
            ]
            if tls:
                argv += ["--certfile", tls["certfile"], "--keyfile", tls["keyfile"]]
            if self.threads:
                argv += ["--threads", str(self.threads)]
            if self.workers:
                argv += ["--workers", str(self.workers)]
            return argv
        overrides = {
            key: value for key, value in (("threads", self.threads), ("workers", self.workers)) if value
        }
        if self.stock_gthread:
            overrides["worker_class"] = "gthread"
        factory = APPS[self.app]
        code = (
            "import json, sys; from webhook.server import run; "
            "run(sys.argv[1], **json.loads(sys.argv[2]), app=sys.argv[3], **json.loads(sys.argv[4]))"
        )
        return [
            sys.executable,
            "-c",
            code,
            f"{self.host}:{self.port}",
            json.dumps(tls),
            factory,
            json.dumps(overrides),
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the webhook exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                status, _ = self.get("/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the webhook did not become ready: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def connection(self, timeout: float = 15.0) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context(), timeout=timeout)

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the served process), for RSS and fd figures."""
        if self.proc is None:
            return []
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self.connection(timeout=2.0)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post_raw(
        self,
        body: bytes,
        *,
        path: str = "/validate?timeout=10s",
        content_type: str = "application/json",
        conn: http.client.HTTPSConnection | None = None,
    ) -> tuple[int, bytes]:
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()

    def post(self, review: object, **kwargs) -> tuple[int, dict | None]:
        status, body = self.post_raw(json.dumps(review).encode(), **kwargs)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def metric(self, name: str) -> float:
        """The sum of a metric's samples (all labels) from /metrics."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=15)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServedWebhook:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
