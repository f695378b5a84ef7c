"""Where the generated tree goes, and the Argo CD path that must name it.

Argo CD reads an Application's `source.path` relative to the repository root, so the tree's directory and
`argocd.path` are one fact: without `--out-dir` the tree goes to `<repository root>/<argocd.path>`; with it,
the Applications follow the directory, unless the catalogue sets `argocd.path` to something else (refused).
The repository root is the nearest directory above the catalogue holding `.git`, else the catalogue's own.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from generator.catalogue import Catalogue


class OutDirError(ValueError):
    """The output directory cannot be what Argo CD reads."""


def repository_root(catalogue_path: Path) -> Path:
    start = catalogue_path.resolve().parent
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return start


def resolve(catalogue: Catalogue, catalogue_path: Path, out_dir: Path | None) -> tuple[Catalogue, Path]:
    """The catalogue with its Argo CD path settled, and the directory to write (as the user would name it)."""
    root = repository_root(catalogue_path)
    if out_dir is None:
        target = (root / catalogue.argocd.path).resolve()
        if not target.is_relative_to(root) or target == root:
            raise OutDirError(
                f"argocd.path {catalogue.argocd.path!r} must name a directory inside the repository"
            )
        return catalogue, _shown(root / catalogue.argocd.path)
    target = out_dir.resolve()
    try:
        relative = target.relative_to(root).as_posix()
    except ValueError:
        raise OutDirError(
            f"--out-dir {out_dir} is outside the repository of {catalogue_path} ({root}); Argo CD can only "
            "read paths inside it"
        ) from None
    if relative == ".":
        raise OutDirError(f"--out-dir {out_dir} is the repository root; give the tree a directory of its own")
    argocd = catalogue.argocd
    if argocd.path_set and relative != argocd.path.strip("/"):
        raise OutDirError(
            f"--out-dir {out_dir} is {relative!r} in the repository, but argocd.path in {catalogue_path} is "
            f"{argocd.path!r}, where the Argo CD Applications point; drop --out-dir or change argocd.path"
        )
    return dataclasses.replace(catalogue, argocd=dataclasses.replace(argocd, path=relative)), out_dir


def _shown(path: Path) -> Path:
    """`path` relative to the working directory when it is below it (as messages have always shown it)."""
    try:
        return Path(os.path.relpath(path)) if path.is_relative_to(Path.cwd()) else path
    except ValueError:
        return path
