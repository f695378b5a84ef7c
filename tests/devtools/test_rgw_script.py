"""scripts/rgw.sh: a throwaway Ceph RGW (needs Debian's radosgw, ceph-mon, ceph-osd; skipped without them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.s3server import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rgw.sh"
needs_ceph = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("radosgw", "ceph-mon", "ceph-osd", "radosgw-admin")),
    reason="Ceph packages not installed (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd)",
)

CHILD = textwrap.dedent("""
    import os, sys
    from devtools.s3server import from_environment
    endpoint = from_environment()
    assert endpoint.backend == "ceph-rgw", endpoint
    s3 = endpoint.client()
    s3.create_bucket(Bucket="script-test")
    s3.put_object(Bucket="script-test", Key="k", Body=b"v")
    print("url", endpoint.url, "body", s3.get_object(Bucket="script-test", Key="k")["Body"].read().decode())
    sys.exit(7)
""")


def rgw_sh(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TMPDIR=str(tmp_path), RGW_STATE=str(tmp_path / "state"), **env)
    for name in [n for n in environment if n.startswith("TFS_TEST_S3_")]:
        del environment[name]
    return subprocess.run(["bash", str(SCRIPT), *args], env=environment, capture_output=True, text=True,
                          timeout=240, cwd=SCRIPT.parents[1])


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("tfs-rgw.*"))


def test_usage_without_a_command(tmp_path):
    result = rgw_sh(tmp_path=tmp_path)
    assert result.returncode == 2
    assert "scripts/rgw.sh run -- CMD" in result.stderr


def test_run_needs_a_command(tmp_path):
    assert rgw_sh("run", "--", tmp_path=tmp_path).returncode == 2


def test_stop_without_start_is_a_no_op(tmp_path):
    result = rgw_sh("stop", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "nothing to stop" in result.stderr


@needs_ceph
def test_run_serves_s3_exports_the_endpoint_and_returns_the_command_status(tmp_path):
    port = free_port()
    result = rgw_sh("run", "--", sys.executable, "-c", CHILD, tmp_path=tmp_path, RGW_PORT=str(port))
    assert result.returncode == 7, result.stderr
    assert result.stdout.strip() == f"url http://127.0.0.1:{port} body v"
    assert f"Ceph RGW up on http://127.0.0.1:{port}" in result.stderr
    assert leftovers(tmp_path) == []


@needs_ceph
def test_start_then_stop(tmp_path):
    port = free_port()
    started = rgw_sh("start", tmp_path=tmp_path, RGW_PORT=str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert f"export TFS_TEST_S3_URL=http://127.0.0.1:{port}\n" in started.stdout
        assert "export TFS_TEST_S3_BACKEND=ceph-rgw\n" in started.stdout
        assert len(leftovers(tmp_path)) == 1
        again = rgw_sh("start", tmp_path=tmp_path, RGW_PORT=str(port))
        assert again.returncode == 1
        assert "a cluster may be running" in again.stderr
    finally:
        stopped = rgw_sh("stop", tmp_path=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "state").exists()


@needs_ceph
def test_failed_start_prints_the_logs_and_cleans_up(tmp_path):
    result = rgw_sh("run", "--", "true", tmp_path=tmp_path, RGW_PORT=str(free_port()), RGW_START_TIMEOUT="0")
    assert result.returncode == 1
    assert "timed out waiting for" in result.stderr
    assert "diagnostics from" in result.stderr
    assert "(last 25 lines)" in result.stderr
    assert leftovers(tmp_path) == []


@needs_ceph
def test_refuses_a_busy_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = rgw_sh("run", "--", "true", tmp_path=tmp_path, RGW_PORT=str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert leftovers(tmp_path) == []
