"""init, schema, --out-dir and the kubectl-style -o/--output of the catalogue commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from generator import resources
from tfs_gitops.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_packaged_schema_is_the_committed_one():
    assert resources.catalogue_schema_text() == (ROOT / "schemas" / "models.schema.json").read_text()


def test_schema_prints_the_catalogue_schema():
    result = run("schema")
    assert result.exit_code == 0 and json.loads(result.stdout)["title"]
    assert result.stdout == resources.catalogue_schema_text()


def test_init_writes_a_starter_that_generates_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run("init")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[:2] == ["wrote    models.yaml", "wrote    models.schema.json"]
    starter = (tmp_path / "models.yaml").read_text()
    assert starter.startswith("# yaml-language-server: $schema=models.schema.json\n")
    assert run("generate").exit_code == 0
    assert run("check").exit_code == 0
    again = run("init")
    assert again.exit_code == 2 and "models.yaml already exists; use --force" in again.stderr
    (tmp_path / "models.yaml").write_text("# mine\n")
    assert run("init", "--force").exit_code == 0
    assert (tmp_path / "models.yaml").read_text() == starter


def test_o_is_the_output_format_and_says_so_to_those_who_meant_a_directory(tmp_path, monkeypatch):
    shutil.copyfile(ROOT / "models.yaml", tmp_path / "models.yaml")
    monkeypatch.chdir(tmp_path)
    result = run("generate", "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["outDir"] == "overlays"
    wrong = run("generate", "-o", "out/dir")
    assert wrong.exit_code == 2
    assert "-o/--output is the format (text, json), as in kubectl; the output directory is --out-dir DIR" in (
        " ".join(wrong.stderr.split())
    )
    assert not (tmp_path / "json").exists() and not (tmp_path / "out").exists()


def test_argo_cd_paths_follow_the_out_dir(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()  # the repository root
    (tmp_path / "deploy").mkdir()
    shutil.copyfile(ROOT / "models.yaml", tmp_path / "deploy" / "models.yaml")
    monkeypatch.chdir(tmp_path / "deploy")
    result = run("generate", "--out-dir", "gitops/tree")
    assert result.exit_code == 0, result.output
    app = yaml.safe_load((tmp_path / "deploy/gitops/tree/prod/_argocd/half-plus-two.yaml").read_text())
    assert app["spec"]["source"]["path"] == "deploy/gitops/tree/prod/half-plus-two"
    assert run("check", "--out-dir", "gitops/tree").exit_code == 0


def test_the_default_tree_goes_where_argocd_path_says(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    text = (ROOT / "models.yaml").read_text().replace("argocd:\n", "argocd:\n  path: clusters/overlays\n", 1)
    (tmp_path / "models.yaml").write_text(text)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = run("generate", "-c", "../models.yaml")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "clusters" / "overlays" / "dev" / "kustomization.yaml").is_file()
    app = yaml.safe_load((tmp_path / "clusters/overlays/dev/_argocd/half-plus-two.yaml").read_text())
    assert app["spec"]["source"]["path"] == "clusters/overlays/dev/half-plus-two"


def test_an_out_dir_argo_cd_cannot_read_is_refused(tmp_path, monkeypatch):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    text = (ROOT / "models.yaml").read_text().replace("argocd:\n", "argocd:\n  path: overlays\n", 1)
    (tmp_path / "repo" / "models.yaml").write_text(text)
    monkeypatch.chdir(tmp_path / "repo")
    mismatch = run("generate", "--out-dir", "elsewhere")
    assert mismatch.exit_code == 2
    assert "argocd.path in models.yaml is 'overlays'" in " ".join(mismatch.stderr.split())
    outside = run("generate", "--out-dir", str(tmp_path / "outside"))
    assert outside.exit_code == 2 and "outside the repository" in " ".join(outside.stderr.split())
    assert not (tmp_path / "repo" / "elsewhere").exists() and not (tmp_path / "outside").exists()


def test_json_problems_are_structured_for_annotations(tmp_path, monkeypatch):
    (tmp_path / "models.yaml").write_text("apiVersion: tfs-gitops/v1alpha1\nmodels:\n\t- name: a\n")
    monkeypatch.chdir(tmp_path)
    result = run("validate", "-o", "json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert {key: problem[key] for key in ("file", "line", "column", "path", "severity")} == {
        "file": "models.yaml",
        "line": 3,
        "column": 1,
        "path": "$",
        "severity": "error",
    }
    assert problem["message"].endswith("YAML indents with spaces only: replace the tab with spaces")


def test_an_unmanaged_file_says_delete_or_move_it(tmp_path, monkeypatch):
    shutil.copyfile(ROOT / "models.yaml", tmp_path / "models.yaml")
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    (tmp_path / "overlays" / "dev" / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(tmp_path)
    result = run("check")
    assert result.exit_code == 1
    hint = "(not generated by tfs-gitops: delete or move it"
    assert f"unmanaged overlays/dev/notes.txt   {hint}" in result.stdout
    assert "delete or move the 1 unmanaged file(s)" in result.stderr
