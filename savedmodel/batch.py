"""Verify many models at once: a thread pool over one checker per S3 endpoint, with a bounded number of
concurrent connections, and a progress callback for the caller to show (this module never prints).

Identical checks (same storage, base path, policy and signature: environments often share a model) run
once. Each check gets its own deadline when it starts, not when it is queued, so a long queue does not eat
into the time of the checks at its end. The version labels of each check are then held against what will
load (TF Serving refuses a label naming a version it does not load).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from rulebook.labels import labels_not_loaded
from rulebook.policy import VersionPolicy

from .checker import DEFAULT_TAGS, SavedModelChecker, deadline_in
from .report import ModelReport, Verdict
from .storage import S3Settings

Progress = Callable[[int, int], None]  # (checks done, checks in all), called from the caller's thread


@dataclass(frozen=True)
class Check:
    label: str  # how errors name it, e.g. "prod/half-plus-two"
    base_path: str
    policy: VersionPolicy
    settings: S3Settings
    signature: str | None = None
    labels: tuple[tuple[str, int], ...] = ()  # version labels that must name loaded versions


def verify_all(
    checks: Sequence[Check],
    *,
    tags: frozenset[str] = DEFAULT_TAGS,
    timeout: float | None = 60.0,
    max_connections: int,
    progress: Progress | None = None,
) -> list[ModelReport]:
    """One report per check, in the order of `checks`.

    Never raises for storage problems (those are CANNOT_VERIFY reports); raises ValueError, naming the check,
    for an endpoint or base path the checker refuses. `timeout` is per model, retries included."""
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    keys = [_key(check) for check in checks]
    unique = list(dict.fromkeys(keys))
    first = {key: check for key, check in zip(keys, checks, strict=True)}
    checkers: dict[S3Settings, SavedModelChecker] = {}
    for key in unique:
        check = first[key]
        if check.settings not in checkers:
            try:
                checkers[check.settings] = SavedModelChecker(check.settings, max_connections=max_connections)
            except ValueError as exc:
                raise ValueError(f"{check.label}: {exc}") from None

    def run(key) -> ModelReport:
        check = first[key]
        return checkers[check.settings].verify(
            check.base_path, check.policy, signature=check.signature, tags=tags, deadline=deadline_in(timeout)
        )

    done: dict = {}
    if progress is not None:
        progress(0, len(unique))
    with ThreadPoolExecutor(max_workers=max(1, min(max_connections, len(unique)))) as pool:
        futures = {pool.submit(run, key): key for key in unique}
        for future in as_completed(futures):
            key = futures[future]
            try:
                done[key] = future.result()
            except ValueError as exc:
                for pending in futures:
                    pending.cancel()
                raise ValueError(f"{first[key].label}: {exc}") from None
            if progress is not None:
                progress(len(done), len(unique))
    return [with_labels_checked(done[key], check.labels) for key, check in zip(keys, checks, strict=True)]


def _key(check: Check) -> tuple:
    return (check.settings, check.base_path, check.policy, check.signature)


def with_labels_checked(report: ModelReport, labels: tuple[tuple[str, int], ...]) -> ModelReport:
    """The report, invalid when a version label names a version TF Serving will not load."""
    if report.verdict is not Verdict.VALID:
        return report
    refused = labels_not_loaded(labels, report.loaded_versions())
    if not refused:
        return report
    problems = tuple(
        f"version label {label!r} names version {version}, which the {report.policy} policy does not load "
        "from what S3 holds: TF Serving would refuse the model config"
        for label, version in refused
    )
    return dataclasses.replace(report, verdict=Verdict.INVALID, problems=report.problems + problems)
