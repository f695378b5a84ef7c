"""Reading the catalogue from git: which base is the default, merge bases, shallow clones, missing files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devtools.gitrepo import IDENTITY, GitRepo
from preview import gitsource
from preview.changes import PreviewError, Revision


def clone(source: Path, target: Path, *extra: str) -> Path:
    subprocess.run(
        ["git", "clone", "--quiet", *extra, f"file://{source}", str(target)],
        check=True,
        env={**os.environ, **IDENTITY},
    )
    return target


def test_default_branch_prefers_what_the_clone_recorded(tmp_path: Path):
    origin = GitRepo(tmp_path / "origin", branch="trunk")
    origin.commit({"models.yaml": "a\n"}, "one")
    local = gitsource.locate(clone(origin.path, tmp_path / "clone") / "models.yaml")
    assert gitsource.default_branch(local) == "origin/trunk"  # origin/HEAD, though no main or master


def test_default_branch_falls_back_to_main_then_master(tmp_path: Path):
    repo = GitRepo(tmp_path / "repo", branch="master")
    repo.commit({"models.yaml": "a\n"}, "one")
    assert gitsource.default_branch(gitsource.locate(repo.path / "models.yaml")) == "master"
    repo.branch("main")
    assert gitsource.default_branch(gitsource.locate(repo.path / "models.yaml")) == "main"
    repo.git("branch", "--move", "main", "work")
    repo.git("branch", "--delete", "master")
    with pytest.raises(PreviewError, match="cannot tell the default branch"):
        gitsource.default_branch(gitsource.locate(repo.path / "models.yaml"))


def test_merge_base_and_reading(tmp_path: Path):
    repo = GitRepo(tmp_path / "repo")
    first = repo.commit({"deploy/models.yaml": "one\n"}, "one")
    repo.branch("feature")
    repo.commit({"deploy/models.yaml": "two\n"}, "two")
    repo.checkout("main")
    repo.commit({"deploy/models.yaml": "three\n"}, "three")
    location = gitsource.locate(repo.path / "deploy" / "models.yaml")
    assert location.path == "deploy/models.yaml"
    base = gitsource.merge_base(location, "main", "feature")
    assert base == Revision("main", first, merge_base_with="feature")
    assert base.describe() == f"merge base of feature and main ({first[:12]})"
    assert gitsource.read(location, base) == b"one\n"
    assert gitsource.read(location, gitsource.resolve(location, "main")) == b"three\n"
    assert gitsource.read(gitsource.Location(location.directory, "nope.yaml"), base) is None


def test_a_shallow_clone_without_the_merge_base_says_what_to_do(tmp_path: Path):
    origin = GitRepo(tmp_path / "origin")
    origin.commit({"models.yaml": "one\n"}, "one")
    origin.branch("feature")
    origin.commit({"models.yaml": "two\n"}, "two")
    origin.checkout("main")
    origin.commit({"models.yaml": "three\n"}, "three")
    shallow = clone(origin.path, tmp_path / "shallow", "--depth=1", "--no-single-branch")
    location = gitsource.locate(shallow / "models.yaml")
    with pytest.raises(PreviewError, match="the clone may be shallow .* fetch-depth: 0"):
        gitsource.merge_base(location, "origin/main", "origin/feature")
