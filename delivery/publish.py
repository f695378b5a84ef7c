"""`tfs-gitops publish`: put a local SavedModel into S3 as a new version directory without TF Serving ever
seeing it half-uploaded.

1. Check the local version directory against the contract (the whole saved_model.pb is local) and refuse
   an invalid one with every reason.
2. List the base path; pick the version (highest existing + 1, zero-padded like the existing names, or the
   one asked for) and refuse one that exists.
3. Begin a multipart upload to every file's final key under BASE/<version>/ (a small file is one part) and
   send every part, all files at once. An upload in progress is in the server's multipart-upload store:
   no listing, HEAD or GET shows it, so TF Serving sees nothing yet. No data is ever copied.
4. Check the version is still free (another publish may have raced us), then complete the uploads: every
   other file first, each checked (size, ETag), saved_model.pb(txt) last. A completion makes one object
   appear whole; TF Serving (and the contract) only takes a directory for a SavedModel once saved_model.pb
   is there, and by then everything else is. Between the first completion and the last the numbered
   directory exists without saved_model.pb, for the time of the completions (metadata operations).
5. `verify` the new version over S3.
On any failure the open uploads are aborted and the numbered directory is removed again, saved_model.pb
first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rulebook.policy import VersionPolicy
from rulebook.s3 import S3Path
from savedmodel import contract
from savedmodel.checker import SavedModelChecker
from savedmodel.evaluate import DEFAULT_TAGS
from savedmodel.listing import list_children
from savedmodel.local import LocalBaseTree, check_local_version
from savedmodel.report import ModelReport, Verdict, VersionReport
from savedmodel.storage import NoSuchBucket, NoSuchKey, S3Store, StorageError

from .transfer import PART_SIZE, TransferError, Transfers, Upload, wait_all

LAST = (contract.SAVED_MODEL_PBTXT, contract.SAVED_MODEL_PB)  # completed last, pb the very last
Notify = Callable[[str], None]


class PublishRefused(Exception):
    """Nothing was written: the model is invalid, the version exists, the input is not a version."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class PublishFailed(Exception):
    """The storage failed or what landed was wrong; `leftovers` names what could not be cleaned up."""

    def __init__(self, message: str, kind: str, leftovers: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.leftovers = leftovers


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative, posix
    source: Path
    size: int


@dataclass(frozen=True)
class PublishPlan:
    local_dir: Path
    base: S3Path
    number: int
    name: str  # the directory name, e.g. "00000124"
    files: tuple[LocalFile, ...]
    local_report: VersionReport
    existing: tuple[str, ...]  # version directory names already there, highest first

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def version_url(self) -> str:
        return f"{self.base}/{self.name}/"

    @property
    def version_prefix(self) -> str:
        return f"{self.base.child(self.name)}/"

    def key(self, relative: str) -> str:
        return f"{self.version_prefix}{relative}"

    def completion_order(self) -> list[LocalFile]:
        """Every other file, then saved_model.pbtxt, then saved_model.pb."""
        return sorted(self.files, key=lambda f: LAST.index(f.path) + 1 if f.path in LAST else 0)


@dataclass(frozen=True)
class PublishResult:
    plan: PublishPlan
    report: ModelReport  # `verify` of the new version over S3
    seconds: float
    incomplete_seconds: float  # at most this long was the numbered directory listed without saved_model.pb


class Publisher:
    def __init__(
        self,
        store: S3Store,
        *,
        jobs: int = 10,
        part_size: int = PART_SIZE,
        notify: Notify | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.part_size = part_size
        self._notify = notify or (lambda _: None)
        self._on_bytes = on_bytes

    # -- planning (reads only) ------------------------------------------------------------------------

    def plan(
        self,
        local_dir: Path,
        base_path: str,
        version: int | None = None,
        *,
        signature: str | None = None,
        tags: frozenset[str] = DEFAULT_TAGS,
    ) -> PublishPlan:
        """Check the local model and choose the version; PublishRefused, or PublishFailed (storage)."""
        local_dir = Path(local_dir)
        base = S3Path.parse(base_path)
        report = self._check_local(local_dir, signature, tags)
        files = tuple(LocalFile(e.path, local_dir / e.path, e.size) for e in report.files if not e.is_marker)
        try:
            index = contract.index_versions(
                list_children(self.store, base.bucket, base.prefix, deadline=None)
            )
        except NoSuchBucket:
            raise PublishRefused([f"bucket {base.bucket!r} does not exist"]) from None
        except StorageError as exc:
            raise PublishFailed(exc.message, exc.kind) from None
        number, name = choose_version(index.by_number, version)
        if number in index.by_number:
            names = ", ".join(f"{base}/{n}/" for n in index.by_number[number])
            raise PublishRefused(
                [f"version {number} already exists ({names}); versions are never overwritten"]
            )
        existing = tuple(index.chosen_name(n) for n in index.numbers)
        return PublishPlan(local_dir, base, number, name, files, report, existing)

    def _check_local(self, local_dir: Path, signature: str | None, tags: frozenset[str]) -> VersionReport:
        if not local_dir.is_dir():
            raise PublishRefused([f"{local_dir} is not a directory"])
        report = check_local_version(local_dir, signature=signature, tags=tags)
        if report.valid:
            return report
        versions = contract.index_versions(LocalBaseTree(local_dir).children()).by_number
        if versions and not any(e.path == contract.SAVED_MODEL_PB for e in report.files):
            names = ", ".join(sorted({n for names in versions.values() for n in names})[:5])
            raise PublishRefused(
                [
                    f"{local_dir} holds version directories ({names}), not a SavedModel: pass one version "
                    f"directory, e.g. {local_dir / sorted(versions.values())[-1][-1]}"
                ]
            )
        raise PublishRefused([f"{local_dir}: {reason}" for reason in report.reasons])

    # -- publishing -----------------------------------------------------------------------------------

    def publish(self, plan: PublishPlan) -> PublishResult:
        started = time.monotonic()
        files = plan.completion_order()
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="publish") as pool:
            transfers = Transfers(self.store, plan.base.bucket, pool, self._on_bytes)
            run = _Run(transfers)
            try:
                self._notify(
                    f"uploading {len(files)} files ({plan.bytes:,} bytes) to {plan.version_url} as multipart "
                    "uploads (no listing shows them until they are completed)"
                )
                pairs = [(f.source, plan.key(f.path)) for f in files]
                run.uploads = transfers.begin_uploads(pairs, self.part_size)
                _check_unchanged(files, run.uploads)
                transfers.send_parts([f.source for f in files], run.uploads)
                self._check_still_free(plan)
                last = [f.path for f in files if f.path in LAST]
                self._notify(f"completing the uploads, {' then '.join(last)} last")
                incomplete_seconds = run.complete_all(len(files) - len(last))
                report = self._verify(plan)
            except BaseException as exc:
                leftovers = self._roll_back(run, plan.version_prefix)
                failure = _failure(exc, leftovers)
                if failure is exc:
                    raise
                raise failure from exc
        return PublishResult(plan, report, time.monotonic() - started, incomplete_seconds)

    def _check_still_free(self, plan: PublishPlan) -> None:
        children = list_children(self.store, plan.base.bucket, plan.base.prefix, deadline=None)
        taken = contract.index_versions(children).by_number.get(plan.number)
        if taken:
            raise PublishRefused(
                [f"version {plan.number} appeared while uploading ({', '.join(taken)}): another publish?"]
            )

    def _verify(self, plan: PublishPlan) -> ModelReport:
        policy = VersionPolicy("specific", versions=(plan.number,))
        checker = SavedModelChecker(self.store.settings, store=self.store)
        report = checker.verify(str(plan.base), policy)
        if report.verdict is not Verdict.VALID:
            reasons = [r for v in report.selected for r in v.reasons] + list(report.problems)
            if report.error:
                raise StorageError(report.error_kind or "unreachable", report.error)
            raise TransferError(f"{plan.version_url} does not verify once uploaded: {'; '.join(reasons)}")
        self._notify(f"verified {plan.version_url}: valid")
        return report

    def _roll_back(self, run: _Run, version_prefix: str) -> tuple[str, ...]:
        """Abort the open uploads, then remove the numbered directory: saved_model.pb first, so no reader
        sees it with files missing."""
        transfers = run.transfers
        leftovers = []
        for upload in run.open_uploads():
            try:
                transfers.abort(upload)
            except StorageError:
                leftovers.append(
                    f"the unfinished multipart upload of s3://{transfers.bucket}/{upload.key} (upload id "
                    f"{upload.upload_id}; no listing shows it)"
                )
        if not run.attempted:
            return tuple(leftovers)  # nothing of ours is visible; what is there (another publish?) stays
        try:
            keys = sorted(set(run.attempted))
            last = [k for k in keys if k.rsplit("/", 1)[-1] in LAST]
            for key in sorted(last, key=lambda k: k.endswith(contract.SAVED_MODEL_PB), reverse=True):
                transfers.delete([key])
            transfers.delete_tree(version_prefix, [k for k in keys if k not in last])
            self._notify(f"removed the partial s3://{transfers.bucket}/{version_prefix} again")
        except StorageError:
            leftovers.append(f"s3://{transfers.bucket}/{version_prefix}")
        return tuple(leftovers)


class _Run:
    """The uploads of one publish: which were completed, and which keys may exist (their completion was
    at least attempted)."""

    def __init__(self, transfers: Transfers) -> None:
        self.transfers = transfers
        self.uploads: list[Upload] = []
        self.attempted: list[str] = []
        self.completed: set[str] = set()

    def complete_all(self, first: int) -> float:
        """Complete the uploads in order: the `first` ones in parallel, each checked, then the rest (the
        saved_model files) one by one. Returns the seconds from the first completion to the end of the
        last: at most that long was the numbered directory listed without saved_model.pb."""
        started = time.monotonic()
        wait_all([self.transfers.pool.submit(self._complete, u) for u in self.uploads[:first]])
        for upload in self.uploads[first:]:
            self._complete(upload)
        return time.monotonic() - started

    def _complete(self, upload: Upload) -> None:
        self.attempted.append(upload.key)
        self.transfers.complete(upload)
        self.completed.add(upload.key)

    def open_uploads(self) -> list[Upload]:
        """Uploads not known to be completed (one whose completion failed may still be open)."""
        return [u for u in self.uploads if u.key not in self.completed]


def choose_version(existing: dict[int, tuple[str, ...]], requested: int | None) -> tuple[int, str]:
    """(number, directory name): the requested number, or the highest existing + 1; zero-padded to the
    width of the existing names when they are zero-padded (00000123 → 00000124)."""
    number = requested if requested is not None else (max(existing) + 1 if existing else 1)
    names = [name.strip() for names in existing.values() for name in names]
    padded = [name for name in names if len(name) > 1 and name.startswith("0")]
    width = max((len(name) for name in padded), default=0)
    return number, str(number).zfill(width)


def _check_unchanged(files: list[LocalFile], uploads: list[Upload]) -> None:
    for local, upload in zip(files, uploads, strict=True):
        if upload.size != local.size:
            raise TransferError(
                f"{local.source} changed since it was checked: {upload.size} bytes, not {local.size}"
            )


def _failure(exc: BaseException, leftovers: tuple[str, ...]) -> BaseException:
    if isinstance(exc, PublishRefused):
        return exc
    if isinstance(exc, StorageError):
        return PublishFailed(exc.message, exc.kind, leftovers)
    if isinstance(exc, TransferError):
        return PublishFailed(str(exc), "mismatch", leftovers)
    if isinstance(exc, NoSuchKey):
        return PublishFailed(f"an object vanished during the publish: {exc}", "vanished", leftovers)
    if isinstance(exc, NoSuchBucket):
        return PublishFailed("the bucket disappeared during the publish", "no-bucket", leftovers)
    if isinstance(exc, OSError):
        return PublishFailed(f"cannot read the local model: {exc}", "local-io", leftovers)
    return exc
