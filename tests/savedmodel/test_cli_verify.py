"""`tfs-gitops verify` / `inspect`: exit codes, exact text (golden files) and JSON with transfer stats."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools.s3server import free_port
from tests.savedmodel.conftest import HALF_PLUS_TWO, MODELS, model_files
from tfs_gitops.cli import main

GOLDEN = MODELS / "golden"
GOOD = model_files(HALF_PLUS_TWO)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def normalise(text: str, bucket: str) -> str:
    text = text.replace(bucket, "BUCKET")
    # transfer sizes differ between S3 servers (listing XML); file sizes do not
    return re.sub(r"(requests?, |read )\d+ bytes", r"\1N bytes", text)


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TFS_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path}:\n{text}"


def test_usage_errors_exit_2():
    assert run("verify", "http://bucket/x").exit_code == 2
    assert run("verify", "s3://bucket/x", "--policy", "newest").exit_code == 2
    assert run("inspect", "s3://bucket/x", "--output", "yaml").exit_code == 2
    bad_endpoint = run("verify", "s3://bucket/x", "--endpoint-url", "not a url")
    assert bad_endpoint.exit_code == 2
    assert "cannot use the S3 endpoint 'not a url'" in bad_endpoint.output
    missing = run("verify", "--catalogue", "/nonexistent/models.yaml")
    assert missing.exit_code == 2
    assert "cannot read the catalogue /nonexistent/models.yaml" in missing.output


def test_unreachable_endpoint_exits_3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    result = run(
        "verify", "s3://models/x", "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--timeout", "5"
    )
    assert result.exit_code == 3
    assert result.output.startswith("s3://models/x: CANNOT VERIFY (latest): cannot list s3://models/x/: ")


@pytest.mark.s3
def test_valid_model_exits_0(s3_env, s3_bucket, put_version):
    put_version("hpt/00000123", GOOD)
    result = run("verify", f"s3://{s3_bucket}/hpt", "--signature", "serving_default")
    assert result.exit_code == 0, result.output
    assert_golden("verify_valid.txt", normalise(result.output, s3_bucket))


@pytest.mark.s3
def test_partial_upload_exits_1_with_every_reason(s3_env, s3_bucket, put_version, put):
    put_version("hpt/00000123", GOOD)
    put_version("hpt/00000124", {"saved_model.pb": GOOD["saved_model.pb"]})
    put({"hpt/latest.txt": b"124", "hpt/00000125.tmp/saved_model.pb": b""})
    result = run("verify", f"s3://{s3_bucket}/hpt")
    assert result.exit_code == 1
    assert_golden("verify_partial.txt", normalise(result.output, s3_bucket))


@pytest.mark.s3
def test_json_output_carries_stats(s3_env, s3_bucket, put_version):
    put_version("hpt/00000123", GOOD)
    result = run("verify", f"s3://{s3_bucket}/hpt", "--output", "json", "--policy", "all")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["verdict"] == "valid" and data["policy"] == "all" and data["selected"] == [123]
    assert data["stats"]["requests"] == 3
    assert data["stats"]["bytes_received"] > len(GOOD["saved_model.pb"])
    assert data["versions"][0]["meta_graphs"][0]["signatures"]["serving_default"]["inputs"]["x"] == {
        "name": "x:0",
        "dtype": "DT_FLOAT",
        "shape": [-1, 1],
        "encoding": "name",
    }


@pytest.mark.s3
def test_inspect_text_and_json(s3_env, s3_bucket, put_version):
    put_version("hpt/00000123", GOOD)
    result = run("inspect", f"s3://{s3_bucket}/hpt")
    assert result.exit_code == 0
    assert_golden("inspect_half_plus_two.txt", normalise(result.output, s3_bucket))
    data = json.loads(run("inspect", f"s3://{s3_bucket}/hpt", "--version", "123", "--output", "json").output)
    assert data["versions"][0]["files"][1] == {"path": "saved_model.pb", "size": len(GOOD["saved_model.pb"])}


@pytest.mark.s3
def test_inspect_of_a_missing_version_is_invalid(s3_env, s3_bucket, put_version):
    put_version("hpt/00000123", GOOD)
    result = run("inspect", f"s3://{s3_bucket}/hpt", "--version", "7")
    assert result.exit_code == 1
    assert "version 7 is not in" in result.output


CATALOGUE = """\
apiVersion: tfs-gitops/v1alpha1
argocd:
  repoURL: https://example.com/repo.git
defaults:
  storage:
    endpoint: {endpoint}
environments:
  - name: dev
    namespace: tfserving-dev
    targetRevision: main
  - name: prod
    namespace: tfserving-prod
    targetRevision: release
models:
  - name: good
    servingName: good
    basePath: s3://{bucket}/good
  - name: partial
    servingName: partial
    basePath: s3://{bucket}/partial
    environments:
      prod:
        versionPolicy: {{specific: [1]}}
"""


@pytest.mark.s3
def test_catalogue_form_verifies_every_environment_and_model(
    s3_env, s3_server, s3_bucket, put_version, tmp_path: Path
):
    put_version("good/1", GOOD)
    put_version("partial/1", GOOD)
    put_version("partial/2", {"saved_model.pb": GOOD["saved_model.pb"]})
    catalogue = tmp_path / "models.yaml"
    catalogue.write_text(CATALOGUE.format(endpoint=s3_server.url, bucket=s3_bucket))
    result = run("verify", "--catalogue", str(catalogue))
    assert result.exit_code == 1, result.output
    heads = [
        line.split(":")[0] + ": " + line.split(": ", 1)[1].split(" ")[0]
        for line in result.output.splitlines()
        if not line.startswith(" ") and "checked" not in line
    ]
    assert heads == [
        "dev/good (s3: VALID",
        "dev/partial (s3: INVALID",
        "prod/good (s3: VALID",
        "prod/partial (s3: VALID",
    ]
    assert result.output.splitlines()[-1] == "4 checked: 3 valid, 1 invalid, 0 cannot verify"
    data = json.loads(run("verify", "--catalogue", str(catalogue), "--output", "json").output)
    assert data["verdict"] == "invalid"
    assert [(r["environment"], r["model"], r["policy"]) for r in data["results"]] == [
        ("dev", "good", "latest"),
        ("dev", "partial", "latest"),
        ("prod", "good", "latest"),
        ("prod", "partial", "specific:1"),
    ]


def test_invalid_catalogue_is_a_usage_error(tmp_path: Path):
    catalogue = tmp_path / "models.yaml"
    catalogue.write_text("apiVersion: nope\n")
    result = run("verify", "--catalogue", str(catalogue))
    assert result.exit_code == 2
    assert "is invalid" in result.output


def test_an_endpoint_without_a_scheme_says_so():
    result = run("verify", "s3://bucket/x", "--endpoint-url", "127.0.0.1:8333")
    assert result.exit_code == 2
    assert "it has no scheme; write http://HOST:PORT" in " ".join(result.output.split())


@pytest.mark.s3
def test_tls_against_a_plain_http_endpoint_says_set_s3_use_https_0(s3_env, s3_server, s3_bucket, monkeypatch):
    if not s3_server.url.startswith("http://"):
        pytest.skip("needs a plain-HTTP S3 endpoint")
    monkeypatch.setenv("S3_USE_HTTPS", "1")  # the mistake: TLS to a plain-HTTP server
    result = run("verify", f"s3://{s3_bucket}/m", "--timeout", "10")
    assert result.exit_code == 3
    assert "(wrong version number): it answers plain HTTP; set S3_USE_HTTPS=0" in result.output


LABELLED = """\
apiVersion: tfs-gitops/v1alpha1
argocd:
  repoURL: https://example.com/repo.git
defaults:
  storage:
    endpoint: {endpoint}
environments:
  - name: dev
models:
  - name: m
    basePath: s3://{bucket}/m
    versionPolicy: {{latest: 2}}
    versionLabels: {{stable: {stable}}}
"""


@pytest.mark.s3
def test_catalogue_verify_refuses_a_label_on_a_version_that_will_not_load(
    s3_env, s3_server, s3_bucket, put_version, tmp_path: Path
):
    for version in ("1", "2", "3"):
        put_version(f"m/{version}", GOOD)
    catalogue = tmp_path / "models.yaml"
    catalogue.write_text(LABELLED.format(endpoint=s3_server.url, bucket=s3_bucket, stable=2))
    assert run("verify", "-c", str(catalogue)).exit_code == 0  # latest:2 loads 3 and 2
    catalogue.write_text(LABELLED.format(endpoint=s3_server.url, bucket=s3_bucket, stable=1))
    result = run("verify", "-c", str(catalogue), "-o", "json")
    assert result.exit_code == 1
    (report,) = json.loads(result.output)["results"]
    assert report["verdict"] == "invalid"
    assert report["problems"] == [
        "version label 'stable' names version 1, which the latest:2 policy does not load from what S3 holds: "
        "TF Serving would refuse the model config"
    ]


def test_progress_is_rewritten_in_place_and_cleared(capsys):
    from tfs_gitops.cli.verify import TerminalProgress

    progress = TerminalProgress()
    progress(0, 12)
    progress(12, 12)
    progress.clear()
    assert capsys.readouterr().err == (
        "\rverifying 0/12 models in S3\rverifying 12/12 models in S3\r" + " " * 28 + "\r"
    )


def test_max_connections_is_bounded():
    assert run("verify", "--max-connections", "0").exit_code == 2
