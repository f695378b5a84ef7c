"""The CLI imports a command's dependencies only when that command runs: `--help` and the catalogue commands
never load boto3, Flask or gunicorn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "flask", "gunicorn", "kubernetes", "prometheus_client", "kubernetes_validate")


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
    "argv",
    [
        ["--help"],
        ["generate", "--help"],
        ["check", "--help"],
        ["schema"],
        ["verify", "--help"],
        ["diff", "--help"],
    ],
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
