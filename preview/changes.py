"""What a catalogue change does, per environment: plain frozen data that the reporters render."""

from __future__ import annotations

from dataclasses import dataclass

ADDED, REMOVED, ENABLED, DISABLED, CHANGED, UNCHANGED = (
    "added",
    "removed",
    "enabled",
    "disabled",
    "changed",
    "unchanged",
)
VALID, INVALID, CANNOT_VERIFY = "valid", "invalid", "cannot-verify"


@dataclass(frozen=True)
class FieldChange:
    field: str  # as the catalogue spells it: "versionPolicy", "versionLabels.stable", "resources.gpu", ...
    before: str | None  # None: not set on that side (added, removed)
    after: str | None


@dataclass(frozen=True)
class ModelChange:
    model: str
    change: str  # added (new in the catalogue) | enabled | changed | disabled | removed (gone from it)
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class ObjectChange:
    target: str  # what Argo CD applies: "overlays/prod", "overlays/prod/_argocd", ".../app-of-apps.yaml"
    kind: str
    namespace: str | None
    name: str
    change: str  # added | removed | changed
    diff: tuple[str, ...]  # unified diff lines, headers included
    before_name: str | None = None  # set when a generated name changed (ConfigMap hash suffix)


@dataclass(frozen=True)
class Verification:
    """The S3 verdict for what TF Serving will load after the change."""

    model: str
    base_path: str
    policy: str
    verdict: str  # valid | invalid | cannot-verify
    loaded: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvironmentPreview:
    name: str
    change: str  # added | removed | changed | unchanged
    settings: tuple[FieldChange, ...] = ()  # the environment's own and Argo CD settings
    models: tuple[ModelChange, ...] = ()
    webhook: tuple[FieldChange, ...] = ()
    objects: tuple[ObjectChange, ...] = ()
    errors: tuple[str, ...] = ()  # builds that failed
    verifications: tuple[Verification, ...] = ()


@dataclass(frozen=True)
class Revision:
    ref: str | None = None  # as named ("main", "HEAD~1"); None with no commit: the working tree
    commit: str | None = None
    merge_base_with: str | None = None  # set when this is the merge base of `ref` and this ("HEAD", …)

    def describe(self, code=str) -> str:
        """`main (0123456789ab)`, `merge base of HEAD and main (…)`, `working tree`; `code` quotes names."""
        if self.commit is None:
            return "working tree"
        name = code(self.ref)
        if self.merge_base_with:
            name = f"merge base of {code(self.merge_base_with)} and {name}"
        return f"{name} ({code(self.commit[:12])})"


@dataclass(frozen=True)
class Preview:
    catalogue: str  # the catalogue's path relative to the repository root
    base: Revision
    head: Revision
    environments: tuple[EnvironmentPreview, ...]
    verified: bool = False  # S3 was asked (--verify)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # the head catalogue's warnings, formatted

    @property
    def changed(self) -> bool:
        return any(env.change != UNCHANGED for env in self.environments)

    @property
    def verdict(self) -> str | None:
        """invalid outranks cannot-verify outranks valid; None when nothing was verified."""
        verdicts = {v.verdict for env in self.environments for v in env.verifications}
        for verdict in (INVALID, CANNOT_VERIFY, VALID):
            if verdict in verdicts:
                return verdict
        return None


class PreviewError(Exception):
    """The preview cannot be made: a side cannot be read or is invalid, or git cannot say what the base is."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
