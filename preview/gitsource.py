"""Read the catalogue as of a git revision, without checking anything out (`git cat-file`).

The default base is where the current branch left the default branch: `git merge-base HEAD <default>`,
the default branch being the first of origin/HEAD (what `git clone` records), main, master, origin/main,
origin/master that exists. A shallow clone may not hold the merge base: fetch more history, or name the base.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from preview.changes import PreviewError, Revision

DEFAULT_BRANCHES = ("main", "master", "origin/main", "origin/master")


@dataclass(frozen=True)
class Location:
    directory: Path  # where git runs (the catalogue's directory)
    path: str  # the catalogue's path relative to the repository root, as git names it


def locate(catalogue: Path) -> Location:
    directory = catalogue.absolute().parent
    if not directory.is_dir():
        raise PreviewError(f"cannot read {catalogue}: no such directory {directory}")
    prefix = _git(directory, "rev-parse", "--show-prefix")
    if prefix is None:
        raise PreviewError(
            f"{catalogue} is not in a git repository: diff reads the base catalogue from git history"
        )
    return Location(directory, prefix.strip() + catalogue.name)


def resolve(location: Location, ref: str) -> Revision:
    commit = _commit(location, ref)
    if commit is None:
        raise PreviewError(f"unknown revision {ref!r}: not a branch, tag or commit of this repository")
    return Revision(ref, commit)


def merge_base(location: Location, ref: str, head: str = "HEAD") -> Revision:
    """Where `head` left `ref`: what a pull request of `head` into `ref` is compared with."""
    found = _git(
        location.directory, "merge-base", resolve(location, head).commit, resolve(location, ref).commit
    )
    if found is None:
        raise PreviewError(
            f"cannot find the merge base of {head} and {ref}: the clone may be shallow (fetch more history, "
            "e.g. actions/checkout with fetch-depth: 0) or the histories are unrelated; name the base with "
            "--base REF"
        )
    return Revision(ref, found.strip(), merge_base_with=head)


def default_branch(location: Location) -> str:
    origin_head = _git(location.directory, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if origin_head and origin_head.strip():
        return origin_head.strip()
    for candidate in DEFAULT_BRANCHES:
        if _commit(location, candidate) is not None:
            return candidate
    raise PreviewError(
        "cannot tell the default branch (no origin/HEAD, main or master): name the base with --base REF"
    )


def read(location: Location, revision: Revision) -> bytes | None:
    """The catalogue's bytes at `revision`, or None when it does not exist there."""
    spec = f"{revision.commit}:{location.path}"
    if _git(location.directory, "cat-file", "-e", spec) is None:
        return None
    completed = subprocess.run(
        ["git", "-C", str(location.directory), "cat-file", "blob", spec], capture_output=True, check=False
    )
    if completed.returncode != 0:
        raise PreviewError(f"cannot read {spec}: {completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout


def _commit(location: Location, ref: str) -> str | None:
    if ref.startswith("-"):
        return None  # never an option to git
    found = _git(location.directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return found.strip() if found else None


def _git(directory: Path, *args: str) -> str | None:
    """git's output, or None when it fails."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise PreviewError("git not found on PATH: diff reads the base catalogue with git") from None
    return completed.stdout if completed.returncode == 0 else None
