"""The contract applied to a tree (S3 or local): list, select, check each selected version, at the cost the
contract needs and no more. The rules themselves are in `contract`; where the bytes come from is the
tree's business (`trees`)."""

from __future__ import annotations

from rulebook.policy import VersionPolicy

from . import contract
from .pbwire import RangedSource, SavedModelInfo, WireError, read_saved_model, read_saved_model_text
from .report import ModelReport, TransferStats, Verdict, VersionReport
from .trees import BaseTree, Meter, NoSuchBucket, NoSuchKey, StorageError, VersionTree, metering

DEFAULT_TAGS = frozenset({"serve"})
MAX_PBTXT_BYTES = 16 * 1024 * 1024


def assess_model(
    tree: BaseTree,
    base: str,
    policy: VersionPolicy,
    *,
    signature: str | None = None,
    tags: frozenset[str] = DEFAULT_TAGS,
    missing_bucket: str | None = None,
) -> ModelReport:
    """Check the versions `policy` selects under `tree` (described as `base`). Never raises for storage
    problems (verdict CANNOT_VERIFY); `missing_bucket` names the bucket in the NoSuchBucket problem."""
    meter = Meter()
    versions: list[VersionReport] = []
    ignored: tuple[str, ...] = ()
    problems: list[str] = []
    warnings: list[str] = []

    def finish(verdict: Verdict, error: StorageError | None = None) -> ModelReport:
        return ModelReport(
            base,
            policy,
            verdict,
            tuple(versions),
            ignored,
            tuple(problems),
            error.message if error else None,
            TransferStats(meter.requests, meter.bytes_received),
            tuple(warnings),
            error.kind if error else None,
        )

    with metering(meter):
        try:
            children = tree.children()
        except NoSuchBucket:
            problems.append(f"bucket {missing_bucket!r} does not exist")
            return finish(Verdict.INVALID)
        except StorageError as exc:
            return finish(Verdict.CANNOT_VERIFY, exc)
        index = contract.index_versions(children)
        ignored = index.ignored
        selected = policy.select(index.by_number)
        model_level, notes = contract.model_problems(index, children, policy, base, selected)
        problems.extend(model_level)
        warnings.extend(notes)
        for number in index.numbers:
            name = index.chosen_name(number)
            if number not in selected:
                # not selected: listed, not checked (valid means "no reason found")
                versions.append(VersionReport(number, name, False, True, (), checked=False))
                continue
            try:
                if name in index.object_versions:
                    versions.append(object_version(number, name))
                else:
                    versions.append(assess_version(tree.version(name), number, name, tags, signature))
            except StorageError as exc:
                return finish(Verdict.CANNOT_VERIFY, exc)
            except NoSuchBucket:
                problems.append(f"bucket {missing_bucket!r} disappeared during the check")
                return finish(Verdict.INVALID)
    invalid = problems or any(v.selected and not v.valid for v in versions)
    return finish(Verdict.INVALID if invalid else Verdict.VALID)


def object_version(number: int, name: str) -> VersionReport:
    reasons = (f"{name!r} is an object, not a directory: TF Serving would try to load it and fail",)
    return VersionReport(number, name, True, False, reasons)


def assess_version(
    tree: VersionTree,
    number: int,
    name: str,
    tags: frozenset[str] = DEFAULT_TAGS,
    signature: str | None = None,
) -> VersionReport:
    """One version directory against the contract (StorageError/NoSuchBucket propagate)."""
    meter = Meter()
    with metering(meter):
        entries = tree.entries()
        files = contract.real_files(entries)
        reasons = contract.layout_reasons(files, entries)
        model_file = contract.saved_model_file(files)
        info: SavedModelInfo | None = None
        chosen = None
        if not reasons and model_file is not None:
            info, read_reason = _read_model(tree, model_file.path, model_file.size)
            if read_reason:
                reasons.append(read_reason)
            else:
                graph_reasons, chosen = contract.meta_graph_reasons(info, tags, signature)
                reasons.extend(graph_reasons)
        if files:
            reasons.extend(contract.variables_reasons(files, entries, chosen))
    return VersionReport(
        number,
        name,
        True,
        not reasons,
        tuple(reasons),
        files=entries,
        meta_graphs=info.meta_graphs if info else (),
        saved_model_bytes=model_file.size if model_file else None,
        stats=TransferStats(meter.requests, meter.bytes_received),
    )


def _read_model(tree: VersionTree, path: str, size: int) -> tuple[SavedModelInfo | None, str | None]:
    def fetch(start: int, end: int) -> bytes:
        return tree.read(path, start, end)

    try:
        if path == contract.SAVED_MODEL_PBTXT:
            if size > MAX_PBTXT_BYTES:
                return None, (
                    f"{path} is {size} bytes; text SavedModels over {MAX_PBTXT_BYTES} bytes are "
                    "not checked: export saved_model.pb instead"
                )
            return read_saved_model_text(fetch(0, size).decode("utf-8", errors="replace")), None
        return read_saved_model(RangedSource(fetch, size)), None
    except WireError as exc:
        return None, f"{path} is truncated or corrupt: {exc}; re-upload it"
    except NoSuchKey:
        return None, f"{path} was listed but vanished before it could be read (being replaced?)"
