"""What the contract reads, wherever the model lives: a base path's children, a version's files, byte ranges
of one file. S3 (`s3tree`) and a local directory (`local`) implement the same two protocols, so one
evaluation (`evaluate`) applies the same rules to both. Also the storage-neutral errors and traffic meters.
No boto3 here."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ObjectEntry:
    path: str  # relative to the listed directory, e.g. "variables/variables.index"
    size: int
    etag: str | None = field(default=None, compare=False)  # S3 only: the listing's ETag, quotes removed

    @property
    def is_marker(self) -> bool:
        return self.path.endswith("/") or self.path == ""


@dataclass(frozen=True)
class Children:
    """What TF Serving's GetChildren sees under a base path."""

    directories: tuple[str, ...]  # names of common prefixes (sub-directories), without the trailing '/'
    objects: tuple[str, ...]  # names of objects (files) directly under the base path (markers excluded)
    pages: int

    @property
    def empty(self) -> bool:
        return not self.directories and not self.objects


class VersionTree(Protocol):
    """One version directory."""

    def entries(self) -> tuple[ObjectEntry, ...]:
        """Every file under it (recursive, sorted by path), plus markers for empty directories."""

    def read(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of one of its files; NoSuchKey when the file is gone."""


class BaseTree(Protocol):
    """A model's base path."""

    def children(self) -> Children:
        """Its immediate children; an empty Children when it does not exist. NoSuchBucket, StorageError."""

    def version(self, name: str) -> VersionTree: ...


# -- errors -----------------------------------------------------------------------------------------------


class StorageError(Exception):
    """The storage did not give a usable answer: the check cannot decide (never reported as "missing")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        # unreachable | tls | access-denied | throttled | timed-out | connection-reset | server-error |
        # rejected | precondition-failed | local-io
        self.kind = kind
        self.message = message


class NoSuchBucket(Exception):
    """The bucket does not exist: a definite answer (the model cannot load), not a storage failure."""


class NoSuchKey(Exception):
    """A listed object vanished before it was read."""


# -- metering ---------------------------------------------------------------------------------------------


class Meter:
    """Requests sent and bytes received while it is active (see `metering`)."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_received = 0


_active_meters: contextvars.ContextVar[tuple[Meter, ...]] = contextvars.ContextVar(
    "savedmodel_meters", default=()
)


@contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    """Count the traffic of this thread/context into `meter` (meters nest)."""
    token = _active_meters.set(_active_meters.get() + (meter,))
    try:
        yield meter
    finally:
        _active_meters.reset(token)


def count(requests: int = 0, received: int = 0) -> None:
    """Add to every active meter."""
    for meter in _active_meters.get():
        meter.requests += requests
        meter.bytes_received += received
