"""The local side of `tfs-gitops sync`: the directory TF Serving reads, changed only by atomic renames.

A version is assembled in DEST/.tfs-sync-<name>-<random>/ (same filesystem, a name TF Serving does not parse
as a version, so it never looks inside), every file and directory fsynced, then renamed to DEST/<name> and
DEST fsynced: TF Serving's next poll sees either no directory or the complete one, also after a crash.
A version leaves the same way: renamed to a hidden name first (gone for TF Serving at once), then deleted.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from rulebook.policy import parse_version_name
from rulebook.sync import STAGING_PREFIX


class LocalMirror:
    def __init__(self, dest: Path) -> None:
        self.dest = Path(dest)

    def prepare(self) -> list[str]:
        """Create DEST if needed; delete staging directories a previous run left (a crash mid-download).
        Returns their names."""
        self.dest.mkdir(parents=True, exist_ok=True)
        stale = [entry.name for entry in os.scandir(self.dest) if entry.name.startswith(STAGING_PREFIX)]
        for name in stale:
            shutil.rmtree(self.dest / name, ignore_errors=True)
        return stale

    def present(self) -> dict[int, str]:
        """The version directories in DEST (number → name), as TF Serving sees them."""
        found: dict[int, str] = {}
        with os.scandir(self.dest) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                number = parse_version_name(entry.name)
                if number is not None and entry.is_dir():
                    found[number] = entry.name
        return found

    def staging(self, name: str) -> Path:
        path = self.dest / f"{STAGING_PREFIX}{name}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        return path

    def place(self, staging: Path, name: str) -> Path:
        """Make `staging` durable, then rename it to DEST/<name> (FileExistsError when that exists)."""
        target = self.dest / name
        _fsync_tree(staging)
        if target.exists():
            raise FileExistsError(f"{target} exists")
        os.rename(staging, target)  # atomic on one filesystem; refuses to replace a non-empty directory
        _fsync_dir(self.dest)
        return target

    def remove(self, name: str) -> None:
        """Take DEST/<name> away in one step (a rename to a hidden name), then delete it."""
        hidden = self.dest / f"{STAGING_PREFIX}removing-{name}-{uuid.uuid4().hex[:12]}"
        os.rename(self.dest / name, hidden)
        _fsync_dir(self.dest)
        shutil.rmtree(hidden, ignore_errors=True)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(directory))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
