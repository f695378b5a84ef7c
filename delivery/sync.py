"""`tfs-gitops sync` and `tfs-gitops watch`: one pass over a model's base path in S3, and the loop around it.

Sync (a destination directory): the local directory holds the versions the policy selects *among the valid
ones*. With `latest` and a broken newest version that is the previous valid one, which TF Serving keeps
serving (what its availability-preserving policy expects); the broken version is reported, not copied. Each
missing version is downloaded into a hidden staging directory, checked (sizes, ETags, the contract on the
local files), fsynced and renamed into place (`mirror`). Versions the policy no longer selects are removed
`prune_after` seconds after they left the selection, once everything selected is in place: TF Serving has
polled the directory and loaded their successor by then.

Watch (no destination): what TF Serving would load next straight from S3 is checked against the contract;
nothing is copied.

A pass never raises for storage trouble: it keeps what is there and reports the error; the loop backs off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rulebook.policy import VersionPolicy
from rulebook.s3 import S3Path
from savedmodel import contract
from savedmodel.checker import SavedModelChecker
from savedmodel.evaluate import DEFAULT_TAGS
from savedmodel.listing import list_children
from savedmodel.local import check_local_version
from savedmodel.report import Verdict, VersionReport
from savedmodel.storage import NoSuchBucket, S3Store, StorageError

from .mirror import LocalMirror
from .transfer import PART_SIZE, Download, TransferError, Transfers

Notify = Callable[[str, str], None]  # (model, message)


@dataclass(frozen=True)
class ModelSpec:
    model: str  # TF Serving's model name: the `model` label of the metrics
    source: str  # s3://bucket/prefix
    policy: VersionPolicy
    dest: Path | None = None  # None: watch only


@dataclass(frozen=True)
class ModelState:
    """What one pass found; the metrics are set from it."""

    model: str
    ok: bool  # the pass reached S3 and finished
    newest: int | None = None  # highest version number in S3
    desired: tuple[int, ...] = ()  # what the policy selects from S3
    invalid: tuple[int, ...] = ()  # selected versions that fail the contract
    target: tuple[int, ...] = ()  # sync: what the local directory should hold (valid, selected)
    present: tuple[int, ...] | None = None  # sync: what it holds after the pass; None when watching
    next_load_valid: bool = False
    ready: bool = False
    error_kind: str | None = None
    error: str | None = None
    placed: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    reasons: dict[int, tuple[str, ...]] = field(default_factory=dict)  # invalid version → why
    problems: tuple[str, ...] = ()  # model-level reasons (a version `specific` names is missing, ...)
    bytes_read: int = 0  # watch: bytes the checks read (sync counts its downloads as they happen)


class ModelSync:
    """One model: `run_pass()` is called by the loop (or once, for an init container)."""

    def __init__(
        self,
        spec: ModelSpec,
        store: S3Store,
        *,
        jobs: int = 10,
        part_size: int = PART_SIZE,
        prune_after: float = 30.0,
        tags: frozenset[str] = DEFAULT_TAGS,
        signature: str | None = None,
        notify: Notify | None = None,
        on_bytes: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.location = S3Path.parse(spec.source)
        self.store = store
        self.checker = SavedModelChecker(store.settings, store=store)
        self.jobs = jobs
        self.part_size = part_size
        self.prune_after = prune_after
        self.tags = frozenset(tags)
        self.signature = signature
        self._notify = notify or (lambda _model, _message: None)
        self._on_bytes = on_bytes
        self._clock = clock
        self.mirror = LocalMirror(spec.dest) if spec.dest is not None else None
        self._unwanted_since: dict[int, float] = {}
        self._last: ModelState | None = None
        self._reported: dict[int, tuple[str, ...]] = {}
        if self.mirror is not None:
            for name in self.mirror.prepare():
                self.notify(f"removed {name}, a staging directory left by an earlier run")

    @property
    def last(self) -> ModelState | None:
        return self._last

    def notify(self, message: str) -> None:
        self._notify(self.spec.model, message)

    def run_pass(self) -> ModelState:
        try:
            state = self._watch_pass() if self.mirror is None else self._sync_pass()
        except StorageError as exc:
            state = self._failed(exc.kind, exc.message)
        except NoSuchBucket:
            state = self._failed("no-bucket", f"bucket {self.location.bucket!r} does not exist")
        except OSError as exc:
            state = self._failed("local-io", f"cannot write {self.spec.dest}: {exc}")
        self._report_invalid(state)
        self._last = state
        return state

    def _failed(self, kind: str, message: str) -> ModelState:
        """Keep the last good picture (and readiness): the local directory is untouched."""
        last = self._last
        present = None
        if self.mirror is not None:
            with contextlib.suppress(OSError):
                present = tuple(sorted(self.mirror.present(), reverse=True))
        if last is None:
            return ModelState(self.spec.model, False, present=present, error_kind=kind, error=message)
        return dataclasses.replace(
            last,
            ok=False,
            present=present,
            error_kind=kind,
            error=message,
            placed=(),
            removed=(),
            bytes_read=0,
        )

    def _report_invalid(self, state: ModelState) -> None:
        """Say why a version is invalid when that changes, not on every pass."""
        if not state.ok:
            return
        current = dict(state.reasons)
        if state.problems:
            current[-1] = state.problems
        for number, reasons in current.items():
            if self._reported.get(number) != reasons:
                what = "the model" if number < 0 else f"version {number}"
                self.notify(f"{what} is invalid: {'; '.join(reasons)}")
        self._reported = current

    # -- watch ------------------------------------------------------------------------------------------

    def _watch_pass(self) -> ModelState:
        report = self.checker.verify(
            self.spec.source, self.spec.policy, signature=self.signature, tags=self.tags
        )
        if report.verdict is Verdict.CANNOT_VERIFY:
            raise StorageError(report.error_kind or "unreachable", report.error or "cannot verify")
        selected = tuple(v.number for v in report.selected)
        invalid = tuple(v.number for v in report.selected if not v.valid)
        reasons = {v.number: v.reasons for v in report.selected if not v.valid}
        return ModelState(
            self.spec.model,
            True,
            newest=max((v.number for v in report.versions), default=None),
            desired=selected,
            invalid=invalid,
            next_load_valid=report.verdict is Verdict.VALID,
            ready=True,
            reasons=reasons,
            problems=report.problems,
            bytes_read=report.stats.bytes_received,
        )

    # -- sync -------------------------------------------------------------------------------------------

    def _sync_pass(self) -> ModelState:
        assert self.mirror is not None
        children = list_children(self.store, self.location.bucket, self.location.prefix, deadline=None)
        index = contract.index_versions(children)
        selected = self.spec.policy.select(index.by_number)
        present = self.mirror.present()
        reports: dict[int, VersionReport] = {}

        def valid(number: int) -> bool:
            if number in present:
                return True  # checked when it was placed; versions are immutable
            if number not in reports:
                name = index.chosen_name(number)
                if name in index.object_versions:
                    reports[number] = VersionReport(
                        number, name, True, False, ("an object, not a directory",)
                    )
                else:
                    reports[number] = self.checker.check_version(
                        self.spec.source, name, signature=self.signature, tags=self.tags
                    )
            return reports[number].valid

        target = self._target(index.numbers, selected, valid)
        invalid = tuple(n for n in selected if not valid(n))
        reasons = {n: reports[n].reasons for n in invalid if n in reports}
        placed: list[int] = []
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix=f"sync-{self.spec.model}") as pool:
            transfers = Transfers(self.store, self.location.bucket, pool, self._bytes)
            for number in target:
                if number in present:
                    continue
                problem = self._fetch_version(transfers, reports[number])
                if problem:
                    reasons[number] = (problem,)
                    continue
                present[number] = reports[number].name
                placed.append(number)
        removed = self._prune(present, target)
        in_place = tuple(sorted(present, reverse=True))
        return ModelState(
            self.spec.model,
            True,
            newest=max(index.by_number, default=None),
            desired=selected,
            invalid=tuple(sorted(set(invalid) | {n for n in reasons if n not in invalid}, reverse=True)),
            target=target,
            present=in_place,
            next_load_valid=bool(in_place),
            ready=bool(target) and set(target) <= set(present),
            placed=tuple(placed),
            removed=removed,
            reasons=reasons,
        )

    def _target(self, numbers: tuple[int, ...], selected: tuple[int, ...], valid) -> tuple[int, ...]:
        """The versions to hold locally: the policy applied to the valid versions."""
        policy = self.spec.policy
        if policy.kind == "latest":
            chosen: list[int] = []
            for number in numbers:  # highest first; stop once enough are valid
                if valid(number):
                    chosen.append(number)
                    if len(chosen) == policy.count:
                        break
            return tuple(chosen)
        if policy.kind == "all":
            return tuple(n for n in numbers if valid(n))
        return tuple(n for n in selected if valid(n))

    def _fetch_version(self, transfers: Transfers, report: VersionReport) -> str | None:
        """Download, check and place one version; the reason it was not placed, or None."""
        assert self.mirror is not None
        started = time.monotonic()
        prefix = self.location.child(report.name)
        staging = self.mirror.staging(report.name)
        try:
            items = []
            for entry in report.files:
                if entry.is_marker:
                    (staging / entry.path).mkdir(parents=True, exist_ok=True)
                else:
                    items.append(
                        Download(f"{prefix}/{entry.path}", entry.size, entry.etag, staging / entry.path)
                    )
            transfers.download_files(items, self.part_size)
            local = check_local_version(staging, signature=self.signature, tags=self.tags)
            if not local.valid:
                return f"the downloaded copy fails the contract: {'; '.join(local.reasons)}"
            self.mirror.place(staging, report.name)
        except TransferError as exc:
            return f"download does not match the listing ({exc}); retrying next pass"
        except StorageError as exc:
            if exc.kind == "precondition-failed":
                return "it changed in S3 during the download (ETag no longer matches); retrying next pass"
            raise
        finally:
            self.mirror.discard(staging)
        size = sum(e.size for e in report.files)
        self.notify(
            f"version {report.number} in place: {self.spec.dest}/{report.name} ({size:,} bytes in "
            f"{time.monotonic() - started:.1f} s)"
        )
        return None

    def _prune(self, present: dict[int, str], target: tuple[int, ...]) -> tuple[int, ...]:
        assert self.mirror is not None
        now = self._clock()
        unwanted = set(present) - set(target)
        for number in list(self._unwanted_since):
            if number not in unwanted:
                del self._unwanted_since[number]
        if not target or not set(target) <= set(present):
            return ()  # never thin out while what should replace it is missing
        removed = []
        for number in sorted(unwanted):
            since = self._unwanted_since.setdefault(number, now)
            if now - since >= self.prune_after:
                self.mirror.remove(present.pop(number))
                del self._unwanted_since[number]
                removed.append(number)
                self.notify(f"version {number} removed: the policy ({self.spec.policy}) no longer selects it")
        return tuple(removed)

    def _bytes(self, n: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes(self.spec.model, n)


class SyncLoop:
    """Passes over every model every `interval` seconds; a model whose pass failed is retried with
    exponential backoff (capped at `max_backoff`), the others keep their rhythm."""

    def __init__(
        self,
        syncs: Iterable[ModelSync],
        interval: float,
        *,
        on_state: Callable[[ModelState], None] | None = None,
        max_backoff: float | None = None,
        refresh: Callable[[], list[ModelSync] | None] | None = None,
    ) -> None:
        """`refresh`, called before every round, returns a new list of models when they changed (a
        re-read models.config), else None."""
        self.syncs = list(syncs)
        self._refresh = refresh or (lambda: None)
        self.interval = interval
        self.max_backoff = max_backoff if max_backoff is not None else max(interval, 60.0)
        self._on_state = on_state or (lambda _state: None)
        self._failures: dict[str, int] = {}
        self.stopping = threading.Event()

    def ready(self) -> bool:
        return all(s.last is not None and s.last.ready for s in self.syncs)

    def run(self) -> None:
        due = {id(sync): 0.0 for sync in self.syncs}
        while not self.stopping.is_set():
            changed = self._refresh()
            if changed is not None:
                self.syncs = list(changed)
                due = {id(sync): due.get(id(sync), 0.0) for sync in self.syncs}
            if not self.syncs:
                self.stopping.wait(self.interval)
                continue
            now = time.monotonic()
            for sync in self.syncs:
                if due[id(sync)] > now or self.stopping.is_set():
                    continue
                state = sync.run_pass()
                self._on_state(state)
                due[id(sync)] = time.monotonic() + self._delay(sync.spec.model, state.ok)
            self.stopping.wait(max(0.0, min(due.values()) - time.monotonic()))

    def _delay(self, model: str, ok: bool) -> float:
        if ok:
            self._failures.pop(model, None)
            return self.interval
        failures = self._failures[model] = self._failures.get(model, 0) + 1
        backoff = min(self.interval * 2 ** (failures - 1), self.max_backoff)
        return backoff * (0.8 + 0.4 * random.random())

    def stop(self) -> None:
        self.stopping.set()
