"""The preview as text (a terminal), Markdown (a pull-request comment) or JSON (a program): one interface,
`render(preview)` and `render_error(catalogue, error)`, returning the whole output as a string.

Markdown is capped (GitHub refuses comments over 65,536 characters): the overview table and what failed in S3
always come first; then the summary lines; then object diffs, in order, until the cap, and a line saying how
many were left out. Its first line is a hidden marker by which CI finds the comment to update.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from preview.changes import (
    ADDED,
    CANNOT_VERIFY,
    CHANGED,
    DISABLED,
    ENABLED,
    INVALID,
    REMOVED,
    UNCHANGED,
    VALID,
    EnvironmentPreview,
    FieldChange,
    ModelChange,
    Preview,
    PreviewError,
    Revision,
    Verification,
)
from preview.verification import to_verify

MARKER = "<!-- tfs-gitops-diff -->"
GITHUB_COMMENT_LIMIT = 65_536
MARKDOWN_MAX_CHARS = 60_000  # below GitHub's limit, leaving room for what CI adds
MODEL_MARKS = {ADDED: "+", ENABLED: "+", CHANGED: "~", DISABLED: "-", REMOVED: "-"}
MODEL_ORDER = (ADDED, ENABLED, CHANGED, DISABLED, REMOVED)
VERDICT_TEXT = {VALID: "valid", INVALID: "INVALID", CANNOT_VERIFY: "CANNOT VERIFY"}
VERDICT_ICON = {VALID: "✅", INVALID: "❌", CANNOT_VERIFY: "⚠️"}


class Reporter(Protocol):
    def render(self, preview: Preview) -> str: ...

    def render_error(self, catalogue: str, error: PreviewError) -> str: ...


def reporter(output_format: str, *, max_chars: int = MARKDOWN_MAX_CHARS) -> Reporter:
    if output_format == "markdown":
        return MarkdownReporter(max_chars)
    if output_format == "json":
        return JsonReporter()
    return TextReporter()


# -- words shared by text and Markdown ----------------------------------------------------------------------


def field_title(name: str) -> str:
    if name == "versionPolicy":
        return "version policy"
    if name.startswith("versionLabels."):
        return "label " + name.split(".", 1)[1]
    return name.removeprefix("webhook.")


def field_text(change: FieldChange, code=str, *, appearing: bool = False) -> str:
    """`label stable 123 → 124`; a value of something that appears is shown alone (`image x`)."""
    if change.field == "webhook":
        return "webhook enabled" if change.after else "webhook disabled"
    title = field_title(change.field)
    if appearing:
        return f"{title} {code(change.after)}"
    before = code(change.before) if change.before is not None else "(none)"
    after = code(change.after) if change.after is not None else "(none)"
    return f"{title} {before} → {after}"


def model_text(change: ModelChange, code=str) -> str:
    appearing = change.change in (ADDED, ENABLED)
    details = "; ".join(field_text(f, code, appearing=appearing) for f in change.fields)
    head = code(change.model) if code is not str else change.model
    if change.change != CHANGED:
        head += f" ({change.change})"
    return f"{head}: {details}" if details else head


def environment_summary(env: EnvironmentPreview) -> str:
    if env.change == UNCHANGED:
        return "no changes"
    parts = []
    if env.change in (ADDED, REMOVED):
        parts.append(f"environment {env.change}")
    counts = [(kind, sum(1 for m in env.models if m.change == kind)) for kind in MODEL_ORDER]
    counts = [(kind, n) for kind, n in counts if n]
    if counts:
        (kind, n), *rest = counts
        parts.append(", ".join([f"{n} model{'s' if n != 1 else ''} {kind}"] + [f"{n} {k}" for k, n in rest]))
    if env.settings and env.change != ADDED:
        parts.append("settings changed")
    if env.webhook:
        parts.append("webhook changed")
    if env.objects:
        parts.append(f"{len(env.objects)} object{'s' if len(env.objects) != 1 else ''} differ")
    if env.errors:
        parts.append(f"{len(env.errors)} build{'s' if len(env.errors) != 1 else ''} failed")
    return "; ".join(parts) or "no rendered change"


def _settings_text(env: EnvironmentPreview, code=str) -> str | None:
    if not env.settings:
        return None
    appearing = env.change == ADDED
    return "environment: " + "; ".join(field_text(f, code, appearing=appearing) for f in env.settings)


def _webhook_text(env: EnvironmentPreview, code=str) -> str | None:
    """`webhook enabled`, `webhook disabled`, or `webhook: failurePolicy Fail → Ignore; …`."""
    if not env.webhook:
        return None
    if [f.field for f in env.webhook] == ["webhook"]:
        return field_text(env.webhook[0], code)
    return "webhook: " + "; ".join(field_text(f, code) for f in env.webhook)


def _verification_head(result: Verification, code=str) -> str:
    where = f"{code(result.base_path)} ({code(result.policy)})"
    if result.verdict == VALID:
        versions = ", ".join(str(v) for v in result.loaded)
        return f"{where} loads version{'s' if len(result.loaded) != 1 else ''} {versions}"
    return where


def _s3_note(preview: Preview) -> str | None:
    """Why there is no S3 verdict, when there is none."""
    if preview.verified:
        if preview.verdict is None:
            return "S3: nothing to verify: the change introduces or moves no version reference"
        return None
    count = len(to_verify(preview))
    if not count:
        return None
    return (
        f"S3 not verified: --verify checks the {count} deployment{'s' if count != 1 else ''} whose loaded "
        "versions this change introduces or moves"
    )


def _revision(preview: Preview, code=str) -> str:
    return f"{preview.base.describe(code)} → {preview.head.describe(code)}"


def _changed_names(preview: Preview) -> list[str]:
    return [env.name for env in preview.environments if env.change != UNCHANGED]


# -- text ---------------------------------------------------------------------------------------------------


class TextReporter:
    def render(self, preview: Preview) -> str:
        lines = [f"{preview.catalogue}: {_revision(preview)}"]
        for env in preview.environments:
            if env.change == UNCHANGED:
                continue
            lines += ["", f"== {env.name}: {environment_summary(env)}"]
            lines += self._summary(env)
            if env.objects:
                lines.append("")
            for change in env.objects:
                lines += change.diff
        lines.append("")
        lines += [f"note: {note}" for note in preview.notes]
        s3_note = _s3_note(preview)
        if s3_note:
            lines.append(s3_note)
        changed = _changed_names(preview)
        unchanged = [env.name for env in preview.environments if env.change == UNCHANGED]
        if changed:
            total = (
                f"{len(changed)} of {len(preview.environments)} environments changed ({', '.join(changed)})"
            )
        else:
            total = f"no changes in {', '.join(unchanged) or 'any environment'}"
        if preview.verdict:
            total += f"; S3: {VERDICT_TEXT[preview.verdict]}"
        lines.append(total)
        return "\n".join(lines) + "\n"

    def _summary(self, env: EnvironmentPreview) -> list[str]:
        lines = []
        settings = _settings_text(env)
        if settings:
            lines.append(f"{'+' if env.change == ADDED else '~'} {settings}")
        webhook = _webhook_text(env)
        if webhook:
            lines.append(f"~ {webhook}")
        lines += [f"{MODEL_MARKS[m.change]} {model_text(m)}" for m in env.models]
        for result in env.verifications:
            lines.append(f"S3 {result.model}: {VERDICT_TEXT[result.verdict]}: {_verification_head(result)}")
            lines += [f"    {reason}" for reason in result.reasons]
        lines += [f"! {error}" for error in env.errors]
        return lines

    def render_error(self, catalogue: str, error: PreviewError) -> str:
        return "\n".join([f"error: {error.message}", *error.details]) + "\n"


# -- JSON ---------------------------------------------------------------------------------------------------


class JsonReporter:
    def render(self, preview: Preview) -> str:
        data = {
            "catalogue": preview.catalogue,
            "base": _revision_json(preview.base),
            "head": _revision_json(preview.head),
            "changed": preview.changed,
            "verified": preview.verified,
            "verdict": preview.verdict,
            "environments": [_environment_json(env) for env in preview.environments],
            "notes": list(preview.notes),
            "warnings": list(preview.warnings),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def render_error(self, catalogue: str, error: PreviewError) -> str:
        data = {"catalogue": catalogue, "error": error.message, "problems": list(error.details)}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _revision_json(revision: Revision) -> dict:
    return {"ref": revision.ref, "commit": revision.commit, "mergeBaseWith": revision.merge_base_with}


def _fields_json(fields: tuple[FieldChange, ...]) -> list[dict]:
    return [{"field": f.field, "before": f.before, "after": f.after} for f in fields]


def _environment_json(env: EnvironmentPreview) -> dict:
    return {
        "name": env.name,
        "change": env.change,
        "settings": _fields_json(env.settings),
        "models": [
            {"model": m.model, "change": m.change, "fields": _fields_json(m.fields)} for m in env.models
        ],
        "webhook": _fields_json(env.webhook),
        "objects": [
            {
                "target": o.target,
                "kind": o.kind,
                "namespace": o.namespace,
                "name": o.name,
                "beforeName": o.before_name,
                "change": o.change,
                "diff": "\n".join(o.diff) + "\n",
            }
            for o in env.objects
        ],
        "errors": list(env.errors),
        "verifications": [
            {
                "model": v.model,
                "basePath": v.base_path,
                "policy": v.policy,
                "verdict": v.verdict,
                "loaded": list(v.loaded),
                "reasons": list(v.reasons),
            }
            for v in env.verifications
        ],
    }


# -- Markdown -----------------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|])")
LINES, DIFFS = "lines", "diffs"


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _plain(text: str) -> str:
    """Prose from elsewhere (S3 reasons, catalogue problems) that Markdown must not reinterpret."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _count(pieces: list, kind: str) -> int:
    return sum(1 for piece in pieces if piece.kind == kind)


@dataclass
class _Piece:
    environment: int
    kind: str  # LINES or DIFFS
    priority: int  # 0: what failed (always first), 1: summary lines, 2: object diffs
    order: int
    text: str
    accepted: bool = False


@dataclass
class _Budget:
    pieces: list[_Piece] = field(default_factory=list)

    def fill(self, budget: int, fence_cost: int) -> None:
        """Accept pieces by priority, then environment, then order; in each priority, stop at the first
        that does not fit (what is shown is a prefix, never a selection)."""
        opened: set[int] = set()
        stopped: set[int] = set()
        for piece in sorted(self.pieces, key=lambda p: (p.priority, p.environment, p.order)):
            piece.accepted = False
            if piece.priority in stopped:
                continue
            cost = len(piece.text) + 1
            if piece.kind == DIFFS and piece.environment not in opened:
                cost += fence_cost
            if cost > budget:
                stopped.add(piece.priority)
                continue
            budget -= cost
            piece.accepted = True
            if piece.kind == DIFFS:
                opened.add(piece.environment)


class MarkdownReporter:
    def __init__(self, max_chars: int = MARKDOWN_MAX_CHARS) -> None:
        self.max_chars = max_chars

    def render(self, preview: Preview) -> str:
        pieces = self._pieces(preview)
        fence = _fence("\n".join(p.text for p in pieces.pieces if p.kind == DIFFS))
        fence_cost = 2 * len(fence) + len("diff") + 4
        budget = self.max_chars - len(self._assemble(preview, pieces, fence, count_all=True))
        while True:
            pieces.fill(budget, fence_cost)
            text = self._assemble(preview, pieces, fence)
            if len(text) <= self.max_chars or budget <= 0:
                return text
            budget -= len(text) - self.max_chars

    def render_error(self, catalogue: str, error: PreviewError) -> str:
        lines = [MARKER, f"### tfs-gitops diff: {_code(catalogue)}", ""]
        lines.append(f"❌ **Cannot preview**: {_plain(error.message)}")
        if error.details:
            details = "\n".join(error.details)
            fence = _fence(details)
            lines += ["", f"{fence}text", details, fence]
        return "\n".join(lines) + "\n"

    def _pieces(self, preview: Preview) -> _Budget:
        budget = _Budget()
        for index, env in enumerate(preview.environments):
            order = 0

            def add(kind: str, priority: int, text: str, index=index) -> None:
                nonlocal order
                budget.pieces.append(_Piece(index, kind, priority, order, text))
                order += 1

            settings = _settings_text(env, _code)
            if settings:
                add(LINES, 1, f"- {settings}")
            webhook = _webhook_text(env, _code)
            if webhook:
                add(LINES, 1, f"- {webhook}")
            for change in env.models:
                add(LINES, 1, f"- {model_text(change, _code)}")
            for result in env.verifications:
                icon = VERDICT_ICON[result.verdict]
                head = _verification_head(result, _code)
                text = f"- S3 {_code(result.model)}: {icon} {result.verdict}: {head}"
                text += "".join(f"\n  - {_plain(reason)}" for reason in result.reasons)
                add(LINES, 0 if result.verdict != VALID else 1, text)
            for error in env.errors:
                add(LINES, 0, f"- ❌ {_plain(error)}")
            for change in env.objects:
                add(DIFFS, 2, "\n".join(change.diff))
        return budget

    def _assemble(self, preview: Preview, pieces: _Budget, fence: str, *, count_all: bool = False) -> str:
        """The comment with the accepted pieces; `count_all`: none accepted, every one counted as left out
        (the longest the fixed parts can be)."""
        lines = [MARKER, f"### tfs-gitops diff: {_code(preview.catalogue)}", ""]
        changed = _changed_names(preview)
        headline = f"{_revision(preview, _code)}: "
        if changed:
            headline += f"**{len(changed)} of {len(preview.environments)} environments changed**"
        else:
            headline += "**no changes**"
        if preview.verdict:
            headline += f"; S3: {VERDICT_ICON[preview.verdict]} {preview.verdict}"
        lines.append(headline)
        if changed:
            lines += ["", "| environment | change | S3 |", "|---|---|---|"]
            lines += [
                f"| {env.name} | {environment_summary(env)} | {self._s3_cell(env, preview)} |"
                for env in preview.environments
            ]
        left_out = {LINES: 0, DIFFS: 0}
        for index, env in enumerate(preview.environments):
            if env.change == UNCHANGED:
                continue
            mine = [p for p in pieces.pieces if p.environment == index]
            shown = [p for p in mine if p.accepted and not count_all]
            missing = {kind: _count(mine, kind) - _count(shown, kind) for kind in left_out}
            for kind, count in missing.items():
                left_out[kind] += count
            failed = any(v.verdict != VALID for v in env.verifications) or env.errors
            summary = f"<summary><b>{env.name}</b>: {html.escape(environment_summary(env))}</summary>"
            lines += ["", f"<details{' open' if failed else ''}>{summary}", ""]
            lines += [p.text for p in shown if p.kind == LINES]
            diffs = [p.text for p in shown if p.kind == DIFFS]
            if diffs:
                lines += ["", f"{fence}diff", *diffs, fence]
            if any(missing.values()):
                lines += ["", f"_Truncated: {self._count_text(missing)} of {env.name} not shown._"]
            lines += ["", "</details>"]
        footer = [f"_Note: {_plain(note)}_" for note in preview.notes]
        footer += [f"_Warning: {_plain(warning)}_" for warning in preview.warnings]
        s3_note = _s3_note(preview)
        if s3_note:
            footer.append(f"_{_plain(s3_note)}_")
        if any(left_out.values()):
            footer.append(
                f"**Truncated, {self._count_text(left_out)} not shown**: the comment is capped at "
                f"{self.max_chars:,} characters; run `tfs-gitops diff` locally for everything."
            )
        if footer:
            lines += ["", *footer]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _s3_cell(env: EnvironmentPreview, preview: Preview) -> str:
        if not env.verifications:
            needed = not preview.verified and any(e == env.name for e, _ in to_verify(preview))
            return "not verified" if needed else ""
        verdicts = [result.verdict for result in env.verifications]
        counts = [(v, verdicts.count(v)) for v in (INVALID, CANNOT_VERIFY, VALID)]
        return ", ".join(f"{VERDICT_ICON[v]} {n} {v}" for v, n in counts if n)

    @staticmethod
    def _count_text(counts: dict[str, int]) -> str:
        parts = []
        if counts[DIFFS]:
            parts.append(f"{counts[DIFFS]} more object{'s' if counts[DIFFS] != 1 else ''}")
        if counts[LINES]:
            parts.append(f"{counts[LINES]} more summary line{'s' if counts[LINES] != 1 else ''}")
        return " and ".join(parts)
