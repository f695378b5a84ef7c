"""`tfs-gitops diff` on real git repositories (a base branch and a feature branch): exact text, Markdown and
JSON for each kind of change, and the errors that name the side they come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools.gitrepo import GitRepo
from tests.generator.goldens import assert_text
from tfs_gitops.cli import main

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "preview"
CATALOGUE = (TESTDATA / "models.yaml").read_text(encoding="utf-8")
FORMATS = {"text": "txt", "markdown": "md", "json": "json"}
pytestmark = pytest.mark.kubectl

PROMOTION = [
    ("versionPolicy: {specific: [123]}", "versionPolicy: {specific: [124]}"),
    ("versionLabels: {stable: 123}", "versionLabels: {stable: 124}"),
]
MODEL_ADDED = [
    (
        "  - name: resnet\n",
        "  - name: mnist\n"
        "    basePath: s3://models/tfserving/mnist\n"
        "    versionPolicy: {latest: 2}\n"
        "    environments:\n"
        "      prod: {enabled: false}       # dev first\n"
        "  - name: resnet\n",
    )
]
DISABLED_IN_DEV = [
    (
        "    basePath: s3://models/tfserving/resnet\n",
        "    basePath: s3://models/tfserving/resnet\n    environments:\n      dev: {enabled: false}\n",
    )
]
IMAGE_BUMP = [("image: tensorflow/serving:2.6.2", "image: tensorflow/serving:2.6.3")]
COMMENTS_ONLY = [
    ("models:\n", "# Promote by pull request; CI previews the change.\nmodels:\n"),
    ("    targetRevision: release\n", "    targetRevision: release   # prod follows the release branch\n"),
]
CASES = {
    "promotion": PROMOTION,
    "model_added": MODEL_ADDED,
    "disabled_in_dev": DISABLED_IN_DEV,
    "image_bump": IMAGE_BUMP,
    "comments_only": COMMENTS_ONLY,
}


def edited(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def run(*args: str):
    return CliRunner().invoke(main, ["diff", *args], catch_exceptions=False)


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """main holds the catalogue; the working tree is on branch `feature`; the cwd is the repository."""
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"models.yaml": CATALOGUE}, "catalogue")
    repository.branch("feature")
    monkeypatch.chdir(repository.path)
    return repository


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("output", sorted(FORMATS))
def test_each_change_in_each_format(repo: GitRepo, case: str, output: str):
    repo.commit({"models.yaml": edited(CATALOGUE, CASES[case])}, case)
    result = run("--base", "main", "--head", "feature", "-o", output)
    assert result.exit_code == 0, result.output
    assert_text(TESTDATA / f"{case}.{FORMATS[output]}", result.output)


def test_working_tree_against_the_merge_base_by_default(repo: GitRepo):
    """main moves on after the branch was made: the default base is where the branch left it, so main's later
    change is not shown as if this branch undid it."""
    repo.checkout("main")
    repo.commit({"models.yaml": edited(CATALOGUE, IMAGE_BUMP)}, "main moves on")
    repo.checkout("feature")
    repo.write({"models.yaml": edited(CATALOGUE, PROMOTION)})  # not committed: the working tree
    result = run()
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    merge_base = repo.git("merge-base", "HEAD", "main").strip()
    assert first == f"models.yaml: merge base of HEAD and main ({merge_base[:12]}) → working tree"
    assert "image" not in result.output
    assert "~ half-plus-two: version policy specific [123] → specific [124]; label stable 123 → 124" in (
        result.output
    )
    repo.commit({}, "the promotion")
    explicit = run("--base", "main", "--merge-base", "--head", "feature")
    assert explicit.output.splitlines()[0] == (
        f"models.yaml: merge base of feature and main ({merge_base[:12]}) → feature ({repo.head()[:12]})"
    )
    assert explicit.output.splitlines()[1:] == result.output.splitlines()[1:]


def test_exit_code_flag(repo: GitRepo):
    repo.write({"models.yaml": edited(CATALOGUE, COMMENTS_ONLY)})
    assert run("--base", "main", "--exit-code").exit_code == 0
    repo.write({"models.yaml": edited(CATALOGUE, PROMOTION)})
    assert run("--base", "main", "--exit-code").exit_code == 1
    assert run("--base", "main").exit_code == 0


def test_catalogue_in_a_subdirectory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"deploy/models.yaml": CATALOGUE, "README.md": "x\n"}, "catalogue")
    repository.branch("feature")
    repository.write({"deploy/models.yaml": edited(CATALOGUE, PROMOTION)})
    monkeypatch.chdir(repository.path / "deploy")
    result = run("-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["catalogue"] == "deploy/models.yaml"
    assert [env["name"] for env in data["environments"] if env["change"] != "unchanged"] == ["prod"]
    # Applications keep pointing at overlays/ below the repository root
    monkeypatch.chdir(repository.path)
    assert run("-c", "deploy/models.yaml", "-o", "json").output == result.output


def test_catalogue_new_in_the_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"README.md": "x\n"}, "readme")
    repository.branch("feature")
    repository.write({"models.yaml": CATALOGUE})
    monkeypatch.chdir(repository.path)
    result = run("--base", "main", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["notes"] == [
        f"models.yaml does not exist at the base, main ({repository.head()[:12]}): everything is added"
    ]
    assert [(env["name"], env["change"]) for env in data["environments"]] == [
        ("dev", "added"),
        ("prod", "added"),
    ]
    assert {m["change"] for env in data["environments"] for m in env["models"]} == {"added"}


@pytest.mark.parametrize("output", sorted(FORMATS))
def test_invalid_at_the_base(repo: GitRepo, output: str):
    repo.checkout("main")
    broken = CATALOGUE.replace("  - name: resnet\n", "  - name: half-plus-two\n")
    repo.commit({"models.yaml": broken}, "a duplicate name slips in")
    repo.git("checkout", "--quiet", "-B", "feature")
    repo.commit({"models.yaml": CATALOGUE}, "fix it")
    result = CliRunner().invoke(main, ["diff", "--base", "main", "-o", output])
    assert result.exit_code == 2
    shown = result.stderr if output == "text" else result.stdout
    assert_text(TESTDATA / f"invalid_base.{FORMATS[output]}", shown)


@pytest.mark.parametrize("output", sorted(FORMATS))
def test_invalid_at_the_head(repo: GitRepo, output: str):
    repo.write({"models.yaml": CATALOGUE.replace("targetRevision: release", "targetRevision: [release]")})
    result = CliRunner().invoke(main, ["diff", "--base", "main", "-o", output])
    assert result.exit_code == 2
    shown = result.stderr if output == "text" else result.stdout
    assert_text(TESTDATA / f"invalid_head.{FORMATS[output]}", shown)


def test_git_problems_are_usage_errors(repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    unknown = run("--base", "no-such-branch")
    assert unknown.exit_code == 2
    assert "unknown revision 'no-such-branch'" in unknown.output
    assert run("--base", "--upload-pack=x").exit_code == 2  # never passed to git as an option
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "models.yaml").write_text(CATALOGUE)
    monkeypatch.chdir(outside)
    result = run()
    assert result.exit_code == 2
    assert "is not in a git repository" in result.output


def test_missing_at_the_head(repo: GitRepo):
    (repo.path / "models.yaml").unlink()
    result = run("--base", "main")
    assert result.exit_code == 2
    assert result.output == "error: models.yaml does not exist at the head: working tree\n"


def test_diff_without_verify_imports_no_s3_or_web_library(repo: GitRepo):
    from tests.tfs_gitops.test_imports import HEAVY, _modules_loaded_by

    repo.write({"models.yaml": edited(CATALOGUE, PROMOTION)})
    loaded = _modules_loaded_by(["diff", "-c", str(repo.path / "models.yaml"), "--base", "main"])
    assert "preview.objects" in loaded
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
