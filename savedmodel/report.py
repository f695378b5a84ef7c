"""Results of a check (distinct verdicts, per-version reasons, transfer statistics) and their renderings.

Rendering is pure: `to_json` returns plain data, `render_text` returns lines; the caller prints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rulebook.policy import VersionPolicy

from .listing import ObjectEntry
from .pbwire import MetaGraphInfo


class Verdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    CANNOT_VERIFY = "cannot-verify"


@dataclass(frozen=True)
class TransferStats:
    requests: int
    bytes_received: int

    def to_json(self) -> dict:
        return {"requests": self.requests, "bytes_received": self.bytes_received}


@dataclass(frozen=True)
class VersionReport:
    number: int
    name: str  # the directory name, e.g. "00000123"
    selected: bool  # the policy selects it (only selected versions decide the verdict)
    valid: bool  # no reason found (True for unchecked versions: see `checked`)
    reasons: tuple[str, ...]  # why it is invalid, in words a person acts on
    checked: bool = True  # False for versions the policy does not select (listed for information)
    files: tuple[ObjectEntry, ...] = ()
    meta_graphs: tuple[MetaGraphInfo, ...] = ()
    saved_model_bytes: int | None = None
    stats: TransferStats = TransferStats(0, 0)

    def to_json(self) -> dict:
        data = {
            "number": self.number,
            "name": self.name,
            "selected": self.selected,
            "checked": self.checked,
            "valid": self.valid if self.checked else None,
            "reasons": list(self.reasons),
        }
        if self.checked:
            data["saved_model_bytes"] = self.saved_model_bytes
            data["meta_graphs"] = [m.to_json() for m in self.meta_graphs]
            data["files"] = [{"path": f.path, "size": f.size} for f in self.files]
            data["stats"] = self.stats.to_json()
        return data


@dataclass(frozen=True)
class ModelReport:
    base_path: str
    policy: VersionPolicy
    verdict: Verdict
    versions: tuple[VersionReport, ...]  # every numeric version found, highest first
    ignored: tuple[str, ...]  # non-numeric child names (reported, not versions)
    problems: tuple[str, ...]  # model-level reasons that make it invalid
    error: str | None  # why it cannot be verified
    stats: TransferStats
    warnings: tuple[str, ...] = field(default=())  # worth knowing, not deciding
    error_kind: str | None = None  # unreachable | access-denied | throttled | timed-out | ...

    @property
    def selected(self) -> tuple[VersionReport, ...]:
        return tuple(v for v in self.versions if v.selected)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.VALID

    def loaded_versions(self) -> tuple[int, ...]:
        """The versions TF Serving will load: selected and valid."""
        return tuple(v.number for v in self.selected if v.valid)

    def to_json(self) -> dict:
        return {
            "base_path": self.base_path,
            "policy": str(self.policy),
            "verdict": self.verdict.value,
            "error": self.error,
            "error_kind": self.error_kind,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "ignored": list(self.ignored),
            "selected": [v.number for v in self.selected],
            "versions": [v.to_json() for v in self.versions],
            "stats": self.stats.to_json(),
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def render_verify_text(report: ModelReport, label: str | None = None) -> list[str]:
    """One headline, then one line per selected version with every reason; problems and notes after."""
    head = label or report.base_path
    stats = f"{_plural(report.stats.requests, 'request')}, {report.stats.bytes_received} bytes"
    if report.verdict is Verdict.CANNOT_VERIFY:
        return [f"{head}: CANNOT VERIFY ({report.policy}): {report.error}", f"  ({stats})"]
    lines = [f"{head}: {report.verdict.value.upper()} ({report.policy}; {stats})"]
    for version in report.selected:
        if version.valid:
            lines.append(f"  version {version.number} ({version.name}): valid")
        for reason in version.reasons:
            lines.append(f"  version {version.number} ({version.name}): {reason}")
    for problem in report.problems:
        lines.append(f"  {problem}")
    for warning in report.warnings:
        lines.append(f"  note: {warning}")
    others = [v.name for v in report.versions if not v.selected]
    if others:
        lines.append(f"  not selected by the policy: {', '.join(others)}")
    if report.ignored:
        lines.append(f"  ignored (not version numbers): {', '.join(report.ignored)}")
    return lines


def render_inspect_text(report: ModelReport) -> list[str]:
    lines = [f"{report.base_path}: {report.verdict.value}"]
    if report.error:
        lines.append(f"  cannot verify: {report.error}")
    lines.append("  versions: " + (", ".join(v.name for v in report.versions) or "none"))
    if report.ignored:
        lines.append("  ignored (not version numbers): " + ", ".join(report.ignored))
    for problem in report.problems:
        lines.append(f"  {problem}")
    for warning in report.warnings:
        lines.append(f"  note: {warning}")
    unchecked = [v.name for v in report.versions if not v.checked]
    if unchecked:
        lines.append("  not inspected: " + ", ".join(unchecked))
    for version in report.versions:
        if not version.checked:
            continue
        state = "valid" if version.valid else "INVALID"
        lines.append(
            f"version {version.number} ({version.name}): {state}; read "
            f"{version.stats.bytes_received} bytes in {_plural(version.stats.requests, 'request')}"
        )
        for reason in version.reasons:
            lines.append(f"  - {reason}")
        for entry in version.files:
            if not entry.is_marker:
                lines.append(f"  file {entry.path} ({entry.size} bytes)")
        for graph in version.meta_graphs:
            tags = ", ".join(graph.tags) or "(no tags)"
            extra = f", TF {graph.tensorflow_version}" if graph.tensorflow_version else ""
            lines.append(
                f"  MetaGraph tags: {tags}{extra}; variables saver: {'yes' if graph.has_saver else 'no'}"
            )
            for sig in graph.signatures:
                lines.append(
                    f"    signature {sig.key!r}" + (f" ({sig.method_name})" if sig.method_name else "")
                )
                for label, tensors in (("input", sig.inputs), ("output", sig.outputs)):
                    for key, spec in tensors:
                        lines.append(
                            f"      {label} {key}: {spec.dtype} shape {spec.shape_text()} name {spec.name}"
                        )
    lines.append(f"  total: {_plural(report.stats.requests, 'request')}, {report.stats.bytes_received} bytes")
    return lines
