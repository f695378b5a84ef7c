"""`tfs-gitops promote`: the in-place edit of models.yaml (every comment kept; goldens before/after), the
verification in S3 that refuses a broken version (real SeaweedFS), the regenerated tree, the labels, and the
--skip-verify safety (loud, marked in the file, refused in CI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import loader
from generator.promote import UNVERIFIED_MARK, PromoteError, Promotion, promote_text
from tests.generator.goldens import TESTDATA as GENERATOR_TESTDATA
from tests.webhook.deployments import upload_model
from tfs_gitops.cli import main

PROMOTE = Path(__file__).resolve().parents[1] / "testdata" / "promote"
BEFORE = (PROMOTE / "models.before.yaml").read_text()
AFTER = (PROMOTE / "models.after.yaml").read_text()
UNVERIFIED = (PROMOTE / "models.unverified.yaml").read_text()
PREFIX = "tfserving/half_plus_two"


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def _promote(text: str, *args, **kwargs) -> str:
    return promote_text(text, loader.loads(text), Promotion(*args, **kwargs))


# --- the edit ----------------------------------------------------------------------------------------------


def test_golden_promotion_changes_two_values_and_keeps_every_comment():
    after = _promote(BEFORE, "half-plus-two", "prod", 124, ("stable",))
    assert after == AFTER
    assert _comments(after) == _comments(BEFORE)
    changed = [(a, b) for a, b in zip(BEFORE.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "        versionPolicy: {specific: [123]}    # pinned: promote a version by changing this line",
            "        versionPolicy: {specific: [124]}    # pinned: promote a version by changing this line",
        ),
        ("        versionLabels: {stable: 123}", "        versionLabels: {stable: 124}"),
    ]
    deployment = next(
        d for d in loader.loads(after).deployments_in("prod") if d.model.name == "half-plus-two"
    )
    assert str(deployment.settings.version_policy) == "specific:124"
    assert deployment.settings.version_labels == (("stable", 124),)


def test_golden_new_environment_entry_goes_before_the_next_models_comments():
    after = _promote(BEFORE, "half-plus-two-gpu", "prod", 7, verified=False)
    assert after == UNVERIFIED
    cut = _comments(BEFORE).index("# no GPU nodes in dev") + 1
    assert _comments(after) == [*_comments(BEFORE)[:cut], UNVERIFIED_MARK, *_comments(BEFORE)[cut:]]


def test_a_verified_promotion_removes_the_unverified_mark():
    assert _promote(UNVERIFIED, "half-plus-two-gpu", "prod", 7) == _promote(
        BEFORE, "half-plus-two-gpu", "prod", 7
    )
    marked = _promote(BEFORE, "half-plus-two", "prod", 124, ("stable",), verified=False)
    assert (
        "versionPolicy: {specific: [124]}    # UNVERIFIED: promoted with --skip-verify; pinned: promote a "
        "version by changing this line"
    ) in marked
    assert _promote(marked, "half-plus-two", "prod", 124, ("stable",)) == AFTER


def test_a_model_without_environments_gets_them():
    text = (GENERATOR_TESTDATA / "catalogues" / "cpu-only" / "models.yaml").read_text()
    after = _promote(text, "half-plus-two", "dev", 3)
    assert after == text + "    environments:\n      dev:\n        versionPolicy: {specific: [3]}\n"


def test_labels_set_elsewhere_are_copied_into_the_environment_when_moved():
    text = BEFORE.replace(
        "    basePath: s3://models/tfserving/half_plus_two_gpu\n",
        "    basePath: s3://models/tfserving/half_plus_two_gpu\n"
        "    versionPolicy: {specific: [1]}\n    versionLabels: {stable: 1}   # everywhere\n",
    )
    after = _promote(text, "half-plus-two-gpu", "prod", 2, ("stable",))
    assert (
        "      prod:\n        versionPolicy: {specific: [2]}\n        versionLabels: {stable: 2}\n" in after
    )
    assert "    versionLabels: {stable: 1}   # everywhere\n" in after  # the other environments keep theirs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("half-plus-two", "prod", 124), "'stable' points at version 123, which {specific: [124]} would no "
         "longer serve in prod (TF Serving refuses such a label): move it with --label stable"),
        (("nope", "prod", 1), "no model 'nope' in the catalogue (models: half-plus-three, half-plus-two, "
         "half-plus-two-gpu)"),
        (("half-plus-two", "qa", 1), "no environment 'qa' in the catalogue (dev, staging, prod)"),
        (("half-plus-two-gpu", "dev", 1), "model 'half-plus-two-gpu' is not served in 'dev' (enabled: false"),
    ],
)  # fmt: skip
def test_promotions_that_cannot_be_made(args, message):
    with pytest.raises(PromoteError) as raised:
        _promote(BEFORE, *args)
    assert message in str(raised.value)


def test_a_file_that_would_be_reformatted_is_not_edited():
    odd = BEFORE.replace("argocd:\n  repoURL:", "argocd:\n      repoURL:", 1)  # indented unlike the rest
    assert loader.loads(odd)
    with pytest.raises(PromoteError, match="cannot be edited without reformatting it"):
        _promote(odd, "half-plus-two", "prod", 124, ("stable",))


# --- the command, against real S3 --------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def repo(tmp_path, s3_bucket):
    """A repository holding the example catalogue (its bucket: this test's) and its generated tree."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "models.yaml").write_text(BEFORE.replace("s3://models/", f"s3://{s3_bucket}/"))
    assert run("generate", "-c", str(tmp_path / "models.yaml")).exit_code == 0
    return tmp_path


def _promote_cli(repo: Path, s3_server, *args: str):
    return run(
        "promote", *args, "-c", str(repo / "models.yaml"), "--endpoint-url", s3_server.url, "--timeout", "30"
    )


def _tree(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


@pytest.mark.s3
@pytest.mark.kubectl
def test_promote_verifies_edits_and_regenerates(repo, s3_server, s3_bucket, s3_env):
    upload_model(s3_server.client(), s3_bucket, PREFIX, ("00000123", "00000124"))
    result = _promote_cli(
        repo, s3_server, "half-plus-two", "--env", "prod", "--version", "124", "--label", "stable"
    )
    assert result.exit_code == 0, result.output
    assert (repo / "models.yaml").read_text() == AFTER.replace("s3://models/", f"s3://{s3_bucket}/")
    assert "-        versionPolicy: {specific: [123]}" in result.output
    assert "+        versionPolicy: {specific: [124]}" in result.output
    config = (repo / "overlays/prod/half-plus-two/models.config").read_text()
    assert "versions: 124" in config and "value: 124" in config and "123" not in config
    assert result.output.rstrip().endswith(
        f"promoted half-plus-two to version 124 in prod: {repo / 'models.yaml'} and {repo / 'overlays'} "
        "updated (1 written, 0 deleted)"
    )
    check = run("check", "-c", str(repo / "models.yaml"))
    assert check.exit_code == 0, check.output


@pytest.mark.s3
def test_promote_refuses_a_version_that_does_not_verify(repo, s3_server, s3_bucket, s3_env):
    upload_model(s3_server.client(), s3_bucket, PREFIX, ("00000123", "00000124"))
    s3_server.client().delete_object(Bucket=s3_bucket, Key=f"{PREFIX}/00000124/variables/variables.index")
    before = _tree(repo)
    result = _promote_cli(
        repo, s3_server, "half-plus-two", "--env", "prod", "--version", "124", "--label", "stable"
    )
    assert result.exit_code == 1
    assert "variables/variables.index is missing" in result.output
    assert f"refused: version 124 of half-plus-two does not verify; {repo / 'models.yaml'} is unchanged" in (
        result.output
    )
    assert _tree(repo) == before
    absent = _promote_cli(
        repo, s3_server, "half-plus-two", "--env", "prod", "--version", "999", "--label", "stable"
    )
    assert absent.exit_code == 1 and _tree(repo) == before


@pytest.mark.s3
def test_dry_run_verifies_and_writes_nothing(repo, s3_server, s3_bucket, s3_env):
    upload_model(s3_server.client(), s3_bucket, PREFIX, ("00000124",))
    before = _tree(repo)
    args = ("half-plus-two", "--env", "prod", "--version", "124", "--label", "stable")
    result = _promote_cli(repo, s3_server, *args, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["promoted"], report["verified"], report["verify"]["verdict"]) == (False, True, "valid")
    assert "+        versionLabels: {stable: 124}" in report["diff"]
    assert _tree(repo) == before


def test_skip_verify_is_loud_marked_and_refused_in_ci(repo, s3_server, monkeypatch):
    args = ("half-plus-two", "--env", "prod", "--version", "124", "--label", "stable", "--skip-verify")
    monkeypatch.setenv("CI", "true")
    refused = _promote_cli(repo, s3_server, *args)
    assert refused.exit_code == 2
    assert "--skip-verify is refused in CI (CI is set)" in refused.output
    monkeypatch.delenv("CI")
    result = CliRunner().invoke(
        main, ["promote", *args, "-c", str(repo / "models.yaml")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "WARNING: --skip-verify: version 124 of half-plus-two was NOT checked in S3."
    )
    assert UNVERIFIED_MARK in (repo / "models.yaml").read_text()
    monkeypatch.setenv("CI", "1")
    assert _promote_cli(repo, s3_server, *args, "--i-know-ci").exit_code == 0


def test_a_label_left_behind_is_a_usage_error(repo, s3_server):
    result = _promote_cli(repo, s3_server, "half-plus-two", "--env", "prod", "--version", "124")
    assert result.exit_code == 2
    assert re.search(r"move it with --label stable", result.output)


ENVS = "    environments:\n      dev:"
SHAPES = {
    "no environments": "",
    "block entry, commented": f"{ENVS}\n        versionPolicy: {{specific: [1]}}   # pinned\n",
    "block entry": f"{ENVS}\n        versionPolicy: {{specific: [1]}}\n",
    "block list": f"{ENVS}\n        versionPolicy:\n          specific:\n            - 1\n",
    "block list, commented": f"{ENVS}\n        versionPolicy:   # pinned\n          specific:\n"
    "            - 1\n",
    "flow entry": f"{ENVS} {{versionPolicy: {{specific: [1]}}, versionLabels: {{stable: 1}}}}   # flow\n",
    "flow environments": "    environments: {dev: {replicas: 2}}\n",
    "latest policy": f"{ENVS}\n        versionPolicy: latest   # follows uploads\n",
    "followed by a comment": f"{ENVS}\n        replicas: 2\n\n# the end\n",
}


def _unmarked(comments: list[str]) -> list[str]:
    rest = [c[len(UNVERIFIED_MARK) :].lstrip("; ") if c.startswith(UNVERIFIED_MARK) else c for c in comments]
    return [c if c.startswith("#") else f"# {c}" for c in rest if c]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_is_edited_marked_and_unmarked_in_place(shape):
    text = (GENERATOR_TESTDATA / "catalogues" / "cpu-only" / "models.yaml").read_text() + SHAPES[shape]
    labels = ("stable",) if "stable" in SHAPES[shape] else ()
    direct = _promote(text, "half-plus-two", "dev", 2, labels)
    marked = _promote(text, "half-plus-two", "dev", 2, labels, verified=False)
    for edited in (direct, marked):
        (deployment,) = loader.loads(edited).deployments
        assert str(deployment.settings.version_policy) == "specific:2"
        assert _unmarked(_comments(edited)) == _comments(text)
    assert marked.count("UNVERIFIED") == 1 and "UNVERIFIED" not in direct
    assert _promote(marked, "half-plus-two", "dev", 2, labels) == direct
    assert text.count("\n") <= direct.count("\n") <= text.count("\n") + 3
