"""Which version directories TF Serving sees, and which of them its version policy loads.

Mirrors tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc: a child of the base path
is a version when `strings::safe_strto64` parses its name (leading/trailing whitespace and a leading '-'
accepted, no '+', overflow rejected); `latest` keeps max(num_versions, 1) highest; `specific` keeps the
listed ones that exist. Our contract additionally requires the number to be non-negative."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

INT64_MAX = 2**63 - 1
_SAFE_STRTO64 = re.compile(r"\A[ \t\n\v\f\r]*(-?)([0-9]+)[ \t\n\v\f\r]*\Z")


def parse_version_name(name: str) -> int | None:
    """The version number TF Serving reads from a directory name, or None when it is not a version."""
    match = _SAFE_STRTO64.match(name)
    if match is None:
        return None
    value = int(match.group(2))
    if match.group(1) and value != 0:
        return None  # TF Serving would take it, but a negative version is not a version in our contract
    if value > INT64_MAX:
        return None
    return value


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: latest (N highest), all, or specific versions."""

    kind: Literal["latest", "all", "specific"]
    count: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(self.versions))
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"unknown version policy {self.kind!r}")
        if self.kind == "latest" and self.count < 1:
            object.__setattr__(self, "count", 1)  # TF Serving serves max(num_versions, 1)
        if self.kind == "specific" and any(v < 0 or v > INT64_MAX for v in self.versions):
            raise ValueError("versions must be non-negative int64 numbers")

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """ "latest", "latest:3", "all", "specific:1,2" (ValueError with a readable message otherwise)."""
        if not isinstance(text, str):
            raise ValueError("version policy must be text")
        kind, sep, arg = text.strip().partition(":")
        kind = kind.strip().lower()
        arg = arg.strip()
        if kind == "latest":
            if not sep:
                return cls("latest")
            if not arg.isdigit() or int(arg) < 1:
                raise ValueError(f"'latest:N' needs a whole number N >= 1, not {arg!r}")
            return cls("latest", count=int(arg))
        if kind == "all" and not sep:
            return cls("all")
        if kind == "specific" and sep:
            parts = [p.strip() for p in arg.split(",") if p.strip()]
            if not parts or not all(p.isdigit() for p in parts):
                raise ValueError(f"'specific:V1,V2' needs comma-separated version numbers, not {arg!r}")
            return cls("specific", versions=tuple(sorted({int(p) for p in parts})))
        raise ValueError(f"unknown version policy {text!r}: use latest, latest:N, all or specific:V1,V2")

    def __str__(self) -> str:
        if self.kind == "latest":
            return "latest" if self.count == 1 else f"latest:{self.count}"
        if self.kind == "all":
            return "all"
        return "specific:" + ",".join(str(v) for v in self.versions)

    def select(self, available: Iterable[int]) -> tuple[int, ...]:
        """The version numbers this policy loads out of `available`, highest first."""
        numbers = sorted(set(available), reverse=True)
        if self.kind == "latest":
            return tuple(numbers[: self.count])
        if self.kind == "all":
            return tuple(numbers)
        wanted = set(self.versions)
        return tuple(n for n in numbers if n in wanted)

    def missing(self, available: Iterable[int]) -> tuple[int, ...]:
        """Versions a `specific` policy names that do not exist."""
        if self.kind != "specific":
            return ()
        present = set(available)
        return tuple(v for v in self.versions if v not in present)
