"""The contract's view of a local directory, the way TF Serving's local file system sees it: the same rules
as over S3 (`evaluate`), so `tfs-gitops publish` refuses locally exactly what `verify` refuses in S3, and
the sync sidecar checks a downloaded version by the rules that admitted it.

A base path's children are its entries (directories are directories, anything else an object); a version's
entries are its files, recursively, with a marker ("dir/") for each empty directory, the way an S3 folder
marker stands for an empty folder. Reads are plain positional reads: the whole file is local.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rulebook.policy import VersionPolicy, parse_version_name

from .evaluate import DEFAULT_TAGS, assess_model, assess_version
from .report import ModelReport, VersionReport
from .trees import Children, NoSuchKey, ObjectEntry, StorageError, count


@dataclass(frozen=True)
class LocalVersionTree:
    path: Path

    def entries(self) -> tuple[ObjectEntry, ...]:
        found: list[ObjectEntry] = []
        try:
            for directory, dirnames, filenames in os.walk(self.path, onerror=_raise):
                relative = Path(directory).relative_to(self.path).as_posix()
                prefix = "" if relative == "." else relative + "/"
                if not dirnames and not filenames and prefix:
                    found.append(ObjectEntry(prefix, 0))
                for name in filenames:
                    found.append(ObjectEntry(prefix + name, os.stat(os.path.join(directory, name)).st_size))
        except FileNotFoundError:
            return tuple(sorted(found, key=lambda e: e.path))
        except OSError as exc:
            raise _io_error(f"list {self.path}", exc) from exc
        return tuple(sorted(found, key=lambda e: e.path))

    def read(self, path: str, start: int, end: int) -> bytes:
        try:
            with open(self.path / path, "rb") as handle:
                data = os.pread(handle.fileno(), end - start, start)
        except FileNotFoundError as exc:
            raise NoSuchKey(str(self.path / path)) from exc
        except OSError as exc:
            raise _io_error(f"read {self.path / path}", exc) from exc
        count(requests=1, received=len(data))
        return data


@dataclass(frozen=True)
class LocalBaseTree:
    path: Path

    def children(self) -> Children:
        directories: list[str] = []
        objects: list[str] = []
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    (directories if entry.is_dir() else objects).append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return Children((), (), 1)
        except OSError as exc:
            raise _io_error(f"list {self.path}", exc) from exc
        return Children(tuple(sorted(directories)), tuple(sorted(objects)), 1)

    def version(self, name: str) -> LocalVersionTree:
        return LocalVersionTree(self.path / name)


def check_local_version(
    path: Path,
    *,
    signature: str | None = None,
    tags: frozenset[str] = DEFAULT_TAGS,
) -> VersionReport:
    """A local version directory against the contract (its number from its name when it is one, else 0).
    StorageError (kind local-io) when it cannot be read."""
    path = Path(path)
    number = parse_version_name(path.name)
    return assess_version(LocalVersionTree(path), number or 0, path.name, frozenset(tags), signature)


def verify_local(
    base: Path,
    policy: VersionPolicy,
    *,
    signature: str | None = None,
    tags: frozenset[str] = DEFAULT_TAGS,
) -> ModelReport:
    """A local base path, as `SavedModelChecker.verify` checks one in S3."""
    return assess_model(
        LocalBaseTree(Path(base)), str(base), policy, signature=signature, tags=frozenset(tags)
    )


def _raise(exc: OSError) -> None:
    raise exc


def _io_error(what: str, exc: OSError) -> StorageError:
    return StorageError("local-io", f"cannot {what}: {exc.strerror or exc}")
