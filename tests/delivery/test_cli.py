"""`tfs-gitops publish | sync | watch` from the command line: exit codes, output, the rendered sync line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from rulebook.modelconfig import ModelEntry, render_model_server_config
from rulebook.names import ModelMetrics
from rulebook.policy import VersionPolicy
from rulebook.sync import SyncSpec
from tests.delivery.conftest import HALF_PLUS_TWO, keys, upload_version, version_files
from tfs_gitops.cli import main

GOOD = version_files(HALF_PLUS_TWO)
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_imports_no_boto3_or_prometheus():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tfs_gitops.cli import main\n"
        "for command in ('generate', 'publish', 'sync', 'watch'):\n"
        "    assert CliRunner().invoke(main, [command, '--help']).exit_code == 0\n"
        "heavy = ('boto3', 'botocore', 'prometheus_client', 'flask', 'gunicorn')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_usage_errors_exit_2(tmp_path):
    assert run("publish", str(tmp_path), "http://bucket/x").exit_code == 2
    assert run("sync", "s3://bucket/x").exit_code == 2  # DEST missing
    assert run("sync", "s3://bucket/x", str(tmp_path), "--listen", "nowhere").exit_code == 2
    assert run("watch").exit_code == 2  # neither SOURCE nor --model-config-file
    assert run("watch", "s3://bucket/x", "--model-config-file", str(tmp_path / "f")).exit_code == 2


@pytest.mark.s3
def test_publish_prints_each_step_and_refuses_overwrite(s3_env, s3_bucket, s3_server):
    base = f"s3://{s3_bucket}/half_plus_two"
    first = run("publish", str(HALF_PLUS_TWO), base, "--version", "123")
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == (
        f"checked {HALF_PLUS_TWO}: a valid SavedModel (4 files, 12,318 bytes; signatures: classify_x_to_y, "
        "regress_x2_to_y3, regress_x_to_y, regress_x_to_y2, serving_default)"
    )
    assert lines[1] == f"version 123 → {base}/123/ (no version there yet)"
    assert lines[2] == (
        f"uploading 4 files (12,318 bytes) to {base}/123/ as multipart uploads (no listing shows them until "
        "they are completed)"
    )
    assert lines[3] == "completing the uploads, saved_model.pb last"
    assert lines[4] == f"verified {base}/123/: valid"
    assert lines[5].startswith(f"published {base}/123/ (12,318 bytes in ")
    again = run("publish", str(HALF_PLUS_TWO), base, "--version", "123")
    assert again.exit_code == 1
    assert f"version 123 already exists ({base}/123/); versions are never overwritten" in again.output
    assert keys(s3_server.client(), s3_bucket, "half_plus_two/") == sorted(
        f"half_plus_two/123/{n}" for n in GOOD
    )


@pytest.mark.s3
def test_publish_refuses_an_invalid_model_and_dry_run_writes_nothing(s3_env, s3_bucket, s3_server, tmp_path):
    broken = tmp_path / "00000001"
    shutil.copytree(HALF_PLUS_TWO, broken)
    (broken / "saved_model.pb").write_bytes((HALF_PLUS_TWO / "saved_model.pb").read_bytes()[:5000])
    refused = run("publish", str(broken), f"s3://{s3_bucket}/m")
    assert refused.exit_code == 1
    assert "refused, nothing was written:" in refused.output
    assert "saved_model.pb is truncated or corrupt" in refused.output
    dry = run("publish", str(HALF_PLUS_TWO), f"s3://{s3_bucket}/m", "--dry-run", "-o", "json")
    assert dry.exit_code == 0
    data = json.loads(dry.output)
    assert (data["dry_run"], data["published"], data["version"], data["path"]) == (
        True,
        False,
        1,
        f"s3://{s3_bucket}/m/1/",
    )
    assert keys(s3_server.client(), s3_bucket) == []


@pytest.mark.s3
def test_the_rendered_sync_line_runs(s3_env, s3_bucket, s3_server, tmp_path):
    """The init container's args, exactly as rulebook.sync renders them for the generator."""
    upload_version(s3_server.client(), s3_bucket, "m/00000123", GOOD)
    dest = tmp_path / "models" / "half_plus_two"
    spec = SyncSpec(f"s3://{s3_bucket}/m", str(dest), VersionPolicy("latest"), once=True)
    assert spec.args() == ["sync", spec.source, spec.dest, "--policy", "latest", "--once"]
    assert SyncSpec.parse(["tfs-gitops", *spec.args()]) == spec
    result = run(*spec.args())
    assert result.exit_code == 0, result.output
    assert "half_plus_two: version 123 in place" in result.output
    assert "half_plus_two: newest in S3 123, selected [123], in place [123], ready" in result.output
    assert sorted(p.name for p in dest.iterdir()) == ["00000123"]


@pytest.mark.s3
def test_sync_once_exits_1_when_nothing_valid_and_3_when_s3_is_unreachable(
    s3_env, s3_bucket, s3_server, tmp_path
):
    upload_version(s3_server.client(), s3_bucket, "m/1", {"saved_model.pb": GOOD["saved_model.pb"]})
    assert run("sync", f"s3://{s3_bucket}/m", str(tmp_path / "a"), "--once").exit_code == 1
    from devtools.s3server import free_port

    unreachable = run(
        "sync",
        f"s3://{s3_bucket}/m",
        str(tmp_path / "b"),
        "--once",
        "--endpoint-url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert unreachable.exit_code == 3
    assert "pass failed (unreachable)" in unreachable.output


@pytest.mark.s3
def test_watch_once_reads_the_model_config(s3_env, s3_bucket, s3_server, tmp_path):
    client = s3_server.client()
    upload_version(client, s3_bucket, "a/1", GOOD)
    upload_version(client, s3_bucket, "b/7", {"saved_model.pb": GOOD["saved_model.pb"]})
    config = tmp_path / "models.config"
    config.write_text(
        render_model_server_config(
            [
                ModelEntry("a", f"s3://{s3_bucket}/a"),
                ModelEntry("b", f"s3://{s3_bucket}/b", policy=VersionPolicy("all")),
            ]
        )
    )
    result = run("watch", "--model-config-file", str(config), "--once")
    assert result.exit_code == 1, result.output
    assert "a: newest in S3 1, selected [1], next load valid" in result.output
    assert "b: newest in S3 7, selected [7], invalid [7], NEXT LOAD INVALID" in result.output
    assert "b: version 7 is invalid: variables/variables.index is missing" in result.output


@pytest.mark.s3
def test_the_sidecar_process_serves_probes_and_metrics_and_stops_on_sigterm(
    s3_env, s3_bucket, s3_server, tmp_path
):
    upload_version(s3_server.client(), s3_bucket, "m/1", GOOD)
    dest = tmp_path / "half_plus_two"
    args = [
        str(ROOT / ".venv/bin/tfs-gitops") if (ROOT / ".venv/bin/tfs-gitops").exists() else "tfs-gitops",
        "sync",
        f"s3://{s3_bucket}/m",
        str(dest),
        "--interval",
        "1",
        "--listen",
        "127.0.0.1:0",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ)
    try:
        url = None
        for line in proc.stdout:
            match = re.search(r"serving /healthz /readyz /metrics on ([\d.]+):(\d+)", line)
            if match:
                url = f"http://{match.group(1)}:{match.group(2)}"
                break
        assert url, "the sidecar never said where it listens"
        deadline = time.monotonic() + 60
        while status(f"{url}/readyz") != 200:
            assert time.monotonic() < deadline, "not ready within 60 s"
            time.sleep(0.1)
        assert status(f"{url}/healthz") == 200
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            text = response.read().decode()
        for name in (ModelMetrics.PRESENT_VERSIONS, ModelMetrics.NEXT_LOAD_VALID, ModelMetrics.BYTES):
            assert f'{name}{{model="half_plus_two"}}' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (dest / "1" / "saved_model.pb").exists()


def status(url: str) -> int:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.s3
def test_sync_no_copy_is_watch(s3_env, s3_bucket, s3_server):
    upload_version(s3_server.client(), s3_bucket, "m/3", GOOD)
    result = run("sync", f"s3://{s3_bucket}/m", "--no-copy", "--once")
    assert result.exit_code == 0, result.output
    assert "m: newest in S3 3, selected [3], next load valid" in result.output
