"""`tfs-gitops diff --verify` against real S3: promoting prod to a complete version, to a partial one, and
an endpoint that does not answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools.gitrepo import GitRepo
from devtools.s3server import free_port
from tests.generator.goldens import assert_text
from tfs_gitops.cli import main

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
MODEL = TESTDATA / "savedmodels" / "saved_model_half_plus_two_cpu" / "00000123"
pytestmark = [pytest.mark.s3, pytest.mark.kubectl]


def promoted(text: str, version: int) -> str:
    return text.replace("{specific: [123]}", f"{{specific: [{version}]}}").replace(
        "{stable: 123}", f"{{stable: {version}}}"
    )


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch, s3_env, s3_server, s3_bucket) -> GitRepo:
    """The preview catalogue with its storage in the test's bucket: 123 and 124 complete, 125 partial."""
    client = s3_server.client()
    files = sorted(p for p in MODEL.rglob("*") if p.is_file())
    partial = [MODEL / "saved_model.pb"]  # an upload that has not reached variables/ yet
    for version, wanted in (("00000123", files), ("00000124", files), ("00000125", partial)):
        for path in wanted:
            key = f"tfserving/half_plus_two/{version}/{path.relative_to(MODEL).as_posix()}"
            client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    catalogue = (TESTDATA / "preview" / "models.yaml").read_text()
    catalogue = catalogue.replace("http://rgw.storage.svc:7480", s3_server.url).replace(
        "s3://models/", f"s3://{s3_bucket}/"
    )
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"models.yaml": catalogue}, "catalogue")
    repository.branch("feature")
    monkeypatch.chdir(repository.path)
    return repository


def normalised(text: str, bucket: str, url: str) -> str:
    text = text.replace(bucket, "BUCKET").replace(url.split("://")[1], "S3_HOST:PORT")
    text = re.sub(r"config-[a-z0-9]{10}", "config-HASH", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "COMMIT", text)


def diff(*args: str):
    return CliRunner().invoke(main, ["diff", "--base", "main", "--verify", *args], catch_exceptions=False)


@pytest.mark.parametrize("output", ["text", "markdown"])
def test_promotion_to_a_complete_version_is_valid(repo: GitRepo, s3_bucket, s3_server, output):
    repo.write({"models.yaml": promoted((repo.path / "models.yaml").read_text(), 124)})
    result = diff("-o", output)
    assert result.exit_code == 0, result.output
    suffix = "txt" if output == "text" else "md"
    assert_text(
        TESTDATA / "preview" / f"verify_complete.{suffix}",
        normalised(result.output, s3_bucket, s3_server.url),
    )


@pytest.mark.parametrize("output", ["text", "markdown"])
def test_promotion_to_a_partial_version_is_invalid(repo: GitRepo, s3_bucket, s3_server, output):
    repo.write({"models.yaml": promoted((repo.path / "models.yaml").read_text(), 125)})
    result = diff("-o", output)
    assert result.exit_code == 1, result.output
    suffix = "txt" if output == "text" else "md"
    assert_text(
        TESTDATA / "preview" / f"verify_partial.{suffix}", normalised(result.output, s3_bucket, s3_server.url)
    )


def test_unchanged_references_are_not_verified(repo: GitRepo):
    text = (repo.path / "models.yaml").read_text()
    repo.write({"models.yaml": text.replace("targetRevision: release", "targetRevision: v2")})
    result = diff()
    assert result.exit_code == 0, result.output
    assert "S3: nothing to verify: the change introduces or moves no version reference\n" in result.output


def test_storage_that_does_not_answer_cannot_verify(repo: GitRepo):
    repo.write({"models.yaml": promoted((repo.path / "models.yaml").read_text(), 124)})
    result = diff("--endpoint-url", f"http://127.0.0.1:{free_port()}", "--timeout", "3", "-o", "json")
    assert result.exit_code == 3, result.output
    assert '"verdict": "cannot-verify"' in result.output
