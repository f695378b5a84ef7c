"""The validity rules, as pure functions over listings and decoded SavedModels (no I/O here).

See the package docstring for the contract in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rulebook.policy import VersionPolicy, parse_version_name

from .listing import Children, ObjectEntry
from .pbwire import MetaGraphInfo, SavedModelInfo

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_INDEX = "variables/variables.index"
_SHARD = re.compile(r"\Avariables/variables\.data-(\d{5})-of-(\d{5})\Z")
_MAX_LISTED = 10


def tag_text(tags: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(tags)) + "}"


# -- version directories -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionIndex:
    """The base path's children as TF Serving interprets them."""

    by_number: dict[int, tuple[str, ...]]  # every name that parses to the number, in TF Serving's order
    ignored: tuple[str, ...]
    object_versions: frozenset[str]  # numeric names that are objects, not directories

    def chosen_name(self, number: int) -> str:
        # TF Serving indexes sorted children into a map, so the last name with a number wins.
        return self.by_number[number][-1]

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(sorted(self.by_number, reverse=True))


def index_versions(children: Children) -> VersionIndex:
    by_number: dict[int, list[str]] = {}
    ignored: list[str] = []
    dirs = set(children.directories)
    object_versions = set()
    for name in sorted(dirs | set(children.objects)):
        number = parse_version_name(name)
        if number is None:
            ignored.append(name + ("/" if name in dirs else ""))
            continue
        by_number.setdefault(number, []).append(name)
        if name not in dirs:
            object_versions.add(name)
    return VersionIndex(
        {n: tuple(names) for n, names in by_number.items()}, tuple(ignored), frozenset(object_versions)
    )


def model_problems(
    index: VersionIndex, children: Children, policy: VersionPolicy, base_path: str, selected: tuple[int, ...]
) -> tuple[list[str], list[str]]:
    """(problems that make the model invalid, warnings) at the level of the base path."""
    problems: list[str] = []
    warnings: list[str] = []
    if not index.by_number:
        if children.empty:
            problems.append(f"no version found: {base_path}/ is missing or empty")
        else:
            found = ", ".join(index.ignored[:_MAX_LISTED])
            problems.append(
                f"no version found under {base_path}/: TF Serving only loads directories named "
                f"by a number (like 1/ or 00000123/); found only {found}"
            )
        return problems, warnings
    if policy.kind == "specific" and not policy.versions:
        problems.append("the policy (specific) names no version, so TF Serving would load none")
    for number in policy.missing(index.by_number):
        problems.append(f"version {number} is not in {base_path}/ but the policy ({policy}) asks for it")
    for number, names in sorted(index.by_number.items(), reverse=True):
        if len(names) < 2:
            continue
        text = (
            f"directories {', '.join(repr(n) for n in names)} are all version {number}; TF Serving loads "
            f"{index.chosen_name(number)!r} for it (and both under the 'all' policy): remove the others"
        )
        (problems if number in selected else warnings).append(text)
    if policy.kind == "latest" and policy.count > len(index.by_number):
        warnings.append(
            f"the policy asks for the {policy.count} latest versions but only {len(index.by_number)} exist"
        )
    return problems, warnings


# -- one version -------------------------------------------------------------------------------------------


def real_files(entries: Iterable[ObjectEntry]) -> dict[str, ObjectEntry]:
    return {e.path: e for e in entries if not e.is_marker}


def saved_model_file(files: dict[str, ObjectEntry]) -> ObjectEntry | None:
    """TF's loader reads saved_model.pb, or saved_model.pbtxt when there is no .pb."""
    return files.get(SAVED_MODEL_PB) or files.get(SAVED_MODEL_PBTXT)


def layout_reasons(files: dict[str, ObjectEntry], entries: tuple[ObjectEntry, ...]) -> list[str]:
    """Reasons visible from the listing alone (before reading saved_model.pb)."""
    if not files:
        what = "only a folder marker" if entries else "nothing"
        return [f"the directory holds {what}: an empty version that TF Serving would select and fail to load"]
    model = saved_model_file(files)
    if model is None:
        names = sorted(files)
        if "model.tflite" in files:
            return ["has no saved_model.pb: it holds model.tflite, a TensorFlow Lite model, not a SavedModel"]
        if any(n.endswith("export.meta") for n in names):
            return [
                "has no saved_model.pb: it looks like a legacy Saver/SessionBundle export (export.meta), "
                "which TF Serving does not load as a SavedModel; re-export with tf.saved_model.save"
            ]
        shown = ", ".join(names[:_MAX_LISTED]) + (" ..." if len(names) > _MAX_LISTED else "")
        return [f"saved_model.pb is missing (found: {shown}); a partial upload, or not a SavedModel?"]
    if model.size == 0:
        return [f"{model.path} is empty (0 bytes): an upload that has not finished?"]
    return []


def meta_graph_reasons(
    info: SavedModelInfo, tags: frozenset[str], signature: str | None
) -> tuple[list[str], MetaGraphInfo | None]:
    """TF's loader picks the MetaGraph whose tag set equals the requested one exactly."""
    chosen = next((m for m in info.meta_graphs if m.tag_set == tags), None)
    if chosen is None:
        found = ", ".join(tag_text(m.tags) for m in info.meta_graphs) or "none"
        return [f"has no MetaGraph tagged {tag_text(tags)} (found: {found})"], None
    if signature and chosen.signature(signature) is None:
        keys = [s.key for s in chosen.signatures if not s.key.startswith("__")]
        have = ", ".join(keys[:_MAX_LISTED]) or "none"
        return [f"has no signature {signature!r} (it has: {have})"], chosen
    return [], chosen


def variables_reasons(
    files: dict[str, ObjectEntry], entries: tuple[ObjectEntry, ...], meta_graph: MetaGraphInfo | None
) -> list[str]:
    has_prefix = any(e.path.startswith("variables/") for e in entries)
    saves = meta_graph is not None and meta_graph.has_saver
    if not (has_prefix or saves):
        return []  # no variables: TF's loader skips the restore
    reasons: list[str] = []
    index = files.get(VARIABLES_INDEX)
    if index is None:
        reasons.append(f"{VARIABLES_INDEX} is missing: the variables cannot be restored (a partial upload?)")
    elif index.size == 0:
        reasons.append(f"{VARIABLES_INDEX} is empty (0 bytes): an upload that has not finished?")
    shards: dict[int, set[int]] = {}
    for path in files:
        match = _SHARD.match(path)
        if match:
            shards.setdefault(int(match.group(2)), set()).add(int(match.group(1)))
    if not shards:
        reasons.append("no variables/variables.data-NNNNN-of-MMMMM shard is present (a partial upload?)")
        return reasons
    if len(shards) > 1:
        totals = ", ".join(f"of-{t:05d}" for t in sorted(shards))
        reasons.append(
            f"the variable shards disagree on their count ({totals}): files of different exports are mixed"
        )
    for total, present in sorted(shards.items()):
        missing = [i for i in range(total) if i not in present]
        for i in missing[:_MAX_LISTED]:
            reasons.append(f"variables/variables.data-{i:05d}-of-{total:05d} is missing (a partial upload?)")
        if len(missing) > _MAX_LISTED:
            reasons.append(
                f"... and {len(missing) - _MAX_LISTED} more variable shards of {total} are missing"
            )
        extra = sorted(i for i in present if i >= total)
        if extra:
            reasons.append(
                f"variables/variables.data-{extra[0]:05d}-of-{total:05d} numbers a shard beyond the "
                "total: the checkpoint is corrupt"
            )
    return reasons
