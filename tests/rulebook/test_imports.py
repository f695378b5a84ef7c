"""The rulebook stays pure: standard library and itself only (no Flask, click, boto3), so every side can use
it; and the CLI imports a command's dependencies only when that command runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "flask", "gunicorn", "kubernetes", "prometheus_client", "kubernetes_validate")


def test_rulebook_imports_only_the_standard_library_and_itself():
    for path in sorted((ROOT / "rulebook").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "rulebook" or top in sys.stdlib_module_names or top == "__future__", (
                    path,
                    name,
                )


def _modules_loaded_by(argv: list[str]) -> set[str]:
    code = (
        "import sys, runpy; sys.argv = ['tfs-gitops', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('tfs_gitops', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "sys.stderr.write('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return set(done.stderr.splitlines())


@pytest.mark.parametrize(
    "argv", [["--help"], ["generate", "--help"], ["check", "--help"], ["schema"], ["verify", "--help"]]
)
def test_help_and_catalogue_commands_import_no_heavy_library(argv):
    loaded = _modules_loaded_by(argv)
    assert "tfs_gitops.cli" in loaded
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}


def test_generate_itself_imports_no_s3_or_web_library(tmp_path):
    (tmp_path / "models.yaml").write_text((ROOT / "models.yaml").read_text())
    loaded = _modules_loaded_by(
        ["generate", "-c", str(tmp_path / "models.yaml"), "--out-dir", str(tmp_path / "o")]
    )
    assert "generator.render" in loaded
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
