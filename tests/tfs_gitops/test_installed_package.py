"""The package works when installed, not only from a checkout: the wheel is built, installed into a fresh
virtualenv outside the checkout (as the webhook's Dockerfile does), and the README's catalogue workflow runs
there — init, schema, generate, check, validate, verify --help — with nothing of the checkout on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kubectl
NOT_SOURCES = (
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "__pycache__",
    ".demo",
    ".bench",
    ".hypothesis",
    "tests",
)


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin directory of a fresh venv holding the wheel with the `validate` extra, a clean environment)."""
    work = tmp_path_factory.mktemp("installed")
    # Built from a copy: setuptools keeps a build/ directory beside the sources, whose leftovers (modules
    # since deleted) would end up in the wheel.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    wheels = work / "wheels"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            ".",
        ],
        source,
        env,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("tfserving_gitops-*.whl")
    venv.EnvBuilder(with_pip=True).create(work / "venv")
    bin_dir = work / "venv" / "bin"
    pip = run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[validate]"], work, env, timeout=900
    )
    assert pip.returncode == 0, pip.stderr
    tools = work / "tools"  # kubectl only: the checkout's venv must not be on PATH
    tools.mkdir()
    os.symlink(shutil.which("kubectl"), tools / "kubectl")
    env["PATH"] = os.pathsep.join([str(bin_dir), str(tools), "/usr/bin", "/bin"])
    return bin_dir, env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    code = "import generator, tfs_gitops; print(generator.__file__); print(tfs_gitops.package_version())"
    done = run([str(bin_dir / "python"), "-c", code], tmp_path, env)
    where, version = done.stdout.split()
    assert "site-packages" in where and not where.startswith(str(ROOT)), where
    assert (
        version
        == run(
            [sys.executable, "-c", "import tfs_gitops; print(tfs_gitops.package_version())"], ROOT, env
        ).stdout.strip()
    )


def test_the_catalogue_workflow_from_the_wheel(installed, tmp_path):
    bin_dir, env = installed
    tfs = str(bin_dir / "tfs-gitops")

    init = run([tfs, "init"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "models.schema.json").read_text() == (
        ROOT / "schemas" / "models.schema.json"
    ).read_text()
    for argv, expected in (
        ([tfs, "generate"], 0),
        ([tfs, "check"], 0),
        ([tfs, "validate"], 0),
        ([tfs, "verify", "--help"], 0),
    ):
        done = run(argv, tmp_path, env)
        assert done.returncode == expected, (argv, done.stdout, done.stderr)
    assert (tmp_path / "overlays" / "prod" / "my-model" / "kustomization.yaml").is_file()

    schema = run([tfs, "schema"], tmp_path, env)
    assert json.loads(schema.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    example = tmp_path / "example"
    example.mkdir()
    shutil.copyfile(ROOT / "models.yaml", example / "models.yaml")
    for argv in ([tfs, "generate", "-c", "models.yaml"], [tfs, "check"], [tfs, "validate", "-o", "json"]):
        done = run(argv, example, env)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert json.loads(done.stdout)["findings"] == []
    committed = run(["diff", "-r", str(ROOT / "overlays"), str(example / "overlays")], tmp_path, env)
    assert committed.returncode == 0, committed.stdout
