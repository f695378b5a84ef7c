"""The exact error output (stderr, exit code) of every invalid catalogue under testdata/generator/invalid/."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from tests.generator.goldens import TESTDATA, assert_text
from tfs_gitops.cli import main

CASES = sorted(path.stem for path in (TESTDATA / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_invalid_catalogue_reports_every_problem(case, tmp_path, monkeypatch):
    shutil.copyfile(TESTDATA / "invalid" / f"{case}.yaml", tmp_path / "models.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert_text(TESTDATA / "invalid" / f"{case}.errors", result.stderr)
    assert not (tmp_path / "overlays").exists()


def test_cases_cover_the_required_kinds():
    for required in ("wrong-types", "unknown-keys", "duplicate-names", "traversal-names", "alias-bomb"):
        assert required in CASES


def test_json_output_lists_problems(tmp_path, monkeypatch):
    shutil.copyfile(TESTDATA / "invalid" / "duplicate-names.yaml", tmp_path / "models.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--output", "json"])
    assert result.exit_code == 1
    assert '"models.yaml:16:11: $.models[1].name: duplicate model name' in result.stdout
