"""devtools.kubecluster without building or starting anything: pins, cache key, cache lookup, build flags."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from devtools import kubecluster

MODULE = kubecluster.MODULE


def copy_module(tmp_path: Path) -> Path:
    target = tmp_path / "cluster"
    shutil.copytree(MODULE, target)
    return target


def test_the_versions_are_pinned_in_go_mod():
    versions = kubecluster.pinned_versions()
    assert re.fullmatch(r"v1\.(3[3-9]|[4-9]\d)\.\d+", versions["kubernetes"])  # >= 1.33, a release
    assert re.fullmatch(r"v3\.\d+\.\d+", versions["etcd"])


def test_every_staging_module_is_replaced_by_the_same_release():
    """k8s.io/kubernetes v1.X.Y as a dependency: each staging module it requires at v0.0.0 (and replaces with
    ./staging/src/...) must be replaced by its published v0.X.Y."""
    text = (MODULE / "go.mod").read_text()
    minor_patch = kubecluster.pinned_versions()["kubernetes"].removeprefix("v1.")
    replaces = dict(re.findall(r"^\s*(k8s\.io/\S+) => (?:k8s\.io/\S+) (v\S+)$", text, re.MULTILINE))
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/component-base"} <= set(replaces)
    assert set(replaces.values()) == {f"v0.{minor_patch}"}
    for module, target in re.findall(r"^\s*(k8s\.io/\S+) => (k8s\.io/\S+) v", text, re.MULTILINE):
        assert module == target


def test_the_cache_key_names_the_versions_and_changes_with_any_pin(tmp_path):
    module = copy_module(tmp_path)
    key = kubecluster.build_key(module)
    versions = kubecluster.pinned_versions(module)
    assert key.startswith(f"kube-{versions['kubernetes']}-etcd-{versions['etcd']}-")
    assert kubecluster.build_key(module) == key  # stable
    go_sum = module / "go.sum"
    go_sum.write_text(go_sum.read_text() + "\n")
    assert kubecluster.build_key(module) != key
    go_sum.write_text(go_sum.read_text()[:-1])
    assert kubecluster.build_key(module) == key
    main = module / "cmd" / "etcd" / "main.go"
    main.write_text(main.read_text() + "// changed\n")
    assert kubecluster.build_key(module) != key


def test_nothing_is_built_when_not_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kubecluster.cache_root() == tmp_path / "tfs-gitops" / "bin"
    assert kubecluster.ensure_binaries(build=False) is None
    assert not (tmp_path / "tfs-gitops").exists()


def test_cached_binaries_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = kubecluster.binaries_directory()
    directory.mkdir(parents=True)
    for name in kubecluster.BINARIES:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    monkeypatch.setattr(kubecluster, "build_binary", lambda *a, **k: pytest.fail("must not build"))
    binaries = kubecluster.ensure_binaries(build=True)
    assert binaries.kube_apiserver == directory / "kube-apiserver"
    assert binaries.etcd == directory / "etcd"
    assert binaries.kubernetes_version == kubecluster.pinned_versions()["kubernetes"]


def test_only_the_missing_binary_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = kubecluster.binaries_directory()
    directory.mkdir(parents=True)
    (directory / "kube-apiserver").write_text("#!/bin/sh\n")
    (directory / "kube-apiserver").chmod(0o755)
    built = []

    def fake_build(name, target, versions):
        built.append(name)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
        return kubecluster.BuildStats(name, 1.0, 2**30, 2**31)

    monkeypatch.setattr(kubecluster, "build_binary", fake_build)
    lines = []
    assert kubecluster.ensure_binaries(build=True, log=lines.append) is not None
    assert built == ["etcd"]
    assert "peak RSS 1.00 GiB" in str(lines[-1])


def test_a_missing_go_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("GO", raising=False)
    monkeypatch.setattr(kubecluster, "GO_FALLBACKS", ())
    with pytest.raises(kubecluster.BuildError, match="go is not on PATH"):
        kubecluster.build_binary("etcd", tmp_path / "etcd")


def test_kube_apiserver_is_stamped_with_its_version():
    flags = kubecluster.ldflags("kube-apiserver", {"kubernetes": "v1.37.2", "etcd": "v3.7.0"})
    assert "-X=k8s.io/component-base/version.gitVersion=v1.37.2" in flags.split()
    assert "-X=k8s.io/component-base/version.gitMinor=37" in flags.split()
    assert kubecluster.ldflags("etcd", {"kubernetes": "v1.37.2", "etcd": "v3.7.0"}) == "-s -w"


def test_the_control_plane_refuses_to_start_without_binaries(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="make e2e"):
        kubecluster.ControlPlane()
