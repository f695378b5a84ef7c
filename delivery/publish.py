"""`tfs-gitops publish`: put a local SavedModel into S3 as a new version directory without TF Serving ever
seeing it half-uploaded.

1. Check the local version directory against the contract (the whole saved_model.pb is local) and refuse
   an invalid one with every reason.
2. List the base path; pick the version (highest existing + 1, zero-padded like the existing names, or the
   one asked for) and refuse one that exists.
3. Upload every file under BASE/.tfs-publish-<version>-<random>/: a name TF Serving does not parse as a
   version, so it never looks inside. Large files go in parallel parts; all files at once.
4. Check the version is still free (another publish may have raced us), then server-side copy into
   BASE/<version>/: every other file first, saved_model.pb last. TF Serving (and the contract) only takes a
   directory for a SavedModel once saved_model.pb is there, and by then everything else is. S3 has no
   atomic rename: between the first copy and the last the numbered directory exists without
   saved_model.pb, for the time of a server-side copy rather than of an upload.
5. Check what landed (size and ETag of every object), then `verify` the new version over S3.
6. Delete the staging prefix. On any failure after step 4 began, the numbered directory is removed again,
   saved_model.pb first; the staging prefix always goes.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from rulebook.policy import VersionPolicy
from rulebook.s3 import S3Path
from rulebook.sync import PUBLISH_STAGING_PREFIX
from savedmodel import contract
from savedmodel.checker import SavedModelChecker
from savedmodel.evaluate import DEFAULT_TAGS
from savedmodel.listing import list_children
from savedmodel.local import LocalBaseTree, check_local_version
from savedmodel.report import ModelReport, Verdict, VersionReport
from savedmodel.storage import NoSuchBucket, NoSuchKey, S3Store, StorageError

from .transfer import (
    COPY_LIMIT,
    PART_SIZE,
    TransferError,
    Transfers,
    Uploaded,
    multipart_etag,
    plain_md5,
    wait_all,
)

LAST = (contract.SAVED_MODEL_PBTXT, contract.SAVED_MODEL_PB)  # copied last, pb the very last
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
    staging_name: str  # the staging directory's name under the base path

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def version_url(self) -> str:
        return f"{self.base}/{self.name}/"

    def key(self, relative: str, directory: str | None = None) -> str:
        return f"{self.base.child(directory or self.name)}/{relative}"


@dataclass(frozen=True)
class PublishResult:
    plan: PublishPlan
    report: ModelReport  # `verify` of the new version over S3
    seconds: float


class Publisher:
    def __init__(
        self,
        store: S3Store,
        *,
        jobs: int = 10,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        notify: Notify | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.part_size = part_size
        self.copy_limit = copy_limit
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
        staging = f"{PUBLISH_STAGING_PREFIX}{name}-{uuid.uuid4().hex[:12]}"
        return PublishPlan(local_dir, base, number, name, files, report, existing, staging)

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
        staging_prefix = f"{plan.base.child(plan.staging_name)}/"
        version_prefix = f"{plan.base.child(plan.name)}/"
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="publish") as pool:
            transfers = Transfers(self.store, plan.base.bucket, pool, self._on_bytes)
            copy = _Copier(self, plan, transfers)
            try:
                self._notify(
                    f"uploading {len(plan.files)} files ({plan.bytes:,} bytes) to s3://{plan.base.bucket}/"
                    f"{staging_prefix} (TF Serving ignores it: not a version number)"
                )
                self._notify(
                    f"copying into {plan.version_url} on the server as each upload completes, "
                    f"{' then '.join(f.path for f in copy.last)} last"
                )
                pairs = [(f.source, plan.key(f.path, plan.staging_name)) for f in plan.files]
                transfers.upload_files(pairs, self.part_size, on_uploaded=copy.uploaded)
                copy.finish()
                report = self._verify(plan)
            except BaseException as exc:
                copy.settle()
                leftovers = self._roll_back(transfers, copy.copied, version_prefix)
                leftovers += self._remove_staging(transfers, staging_prefix)
                failure = _failure(exc, leftovers)
                if failure is exc:
                    raise
                raise failure from exc
            leftovers = self._remove_staging(transfers, staging_prefix)
            if leftovers:
                self._notify(f"could not remove the staging prefix: {', '.join(leftovers)}")
        return PublishResult(plan, report, time.monotonic() - started)

    def _check_still_free(self, plan: PublishPlan) -> None:
        children = list_children(self.store, plan.base.bucket, plan.base.prefix, deadline=None)
        taken = contract.index_versions(children).by_number.get(plan.number)
        if taken:
            raise PublishRefused(
                [f"version {plan.number} appeared while uploading ({', '.join(taken)}): another publish?"]
            )

    def _check_landed(
        self, transfers: Transfers, key: str, local: LocalFile, staged: Uploaded, copy_etag: str | None
    ) -> None:
        size, etag = transfers.head(key)
        url = f"s3://{transfers.bucket}/{key}"
        if size != local.size:
            raise TransferError(f"{url} holds {size} bytes, not the {local.size} of {local.source}")
        if etag == staged.etag:
            return
        # Some servers give a copy its own ETag (AWS: the MD5 of a copy of a multipart object; SeaweedFS:
        # ETags of its own for UploadPartCopy). Then compare content: the whole MD5 when the ETag is one,
        # else read the copy back part by part against the part MD5s the upload got.
        if plain_md5(etag) and _file_md5(local.source) == etag:
            return
        if _read_back_matches(transfers, key, staged):
            return
        raise TransferError(f"{url} has ETag {etag}, and its content does not match {local.source}")

    def _verify(self, plan: PublishPlan) -> ModelReport:
        policy = VersionPolicy("specific", versions=(plan.number,))
        checker = SavedModelChecker(self.store.settings, store=self.store)
        report = checker.verify(str(plan.base), policy)
        if report.verdict is not Verdict.VALID:
            reasons = [r for v in report.selected for r in v.reasons] + list(report.problems)
            if report.error:
                raise StorageError(report.error_kind or "unreachable", report.error)
            raise TransferError(f"{plan.version_url} does not verify after the copy: {'; '.join(reasons)}")
        self._notify(f"verified {plan.version_url}: valid")
        return report

    def _roll_back(self, transfers: Transfers, copied: list[str], version_prefix: str) -> tuple[str, ...]:
        """Remove the numbered directory: saved_model.pb first, so no reader sees it with files missing."""
        try:
            keys = sorted(set(copied) | set(transfers.keys_under(version_prefix)))
            last = [k for k in keys if k.rsplit("/", 1)[-1] in LAST]
            for key in sorted(last, key=lambda k: k.endswith(contract.SAVED_MODEL_PB), reverse=True):
                transfers.delete([key])
            transfers.delete_tree(version_prefix, [k for k in keys if k not in last])
            if keys:
                self._notify(f"removed the partial s3://{transfers.bucket}/{version_prefix} again")
            return ()
        except StorageError:
            return (f"s3://{transfers.bucket}/{version_prefix}",)

    def _remove_staging(self, transfers: Transfers, staging_prefix: str) -> tuple[str, ...]:
        try:
            transfers.abort_uploads(staging_prefix)
            transfers.delete_tree(staging_prefix)
            return ()
        except StorageError:
            return (f"s3://{transfers.bucket}/{staging_prefix}",)


class _Copier:
    """Server-side copies into the version directory, started as each staged upload completes (the copy
    of one file overlaps the upload of the next); saved_model.pb(txt), and files above the copy limit,
    whose parts need the pool, are copied from the calling thread once everything else has landed. The
    version is checked to be still free before the first copy."""

    def __init__(self, publisher: Publisher, plan: PublishPlan, transfers: Transfers) -> None:
        self.publisher = publisher
        self.plan = plan
        self.transfers = transfers
        self.copied: list[str] = []
        self.staged: dict[str, Uploaded] = {}
        self.by_key = {plan.key(f.path, plan.staging_name): f for f in plan.files}
        self.last = sorted((f for f in plan.files if f.path in LAST), key=lambda f: LAST.index(f.path))
        self._futures: list[Future] = []
        self._lock = threading.Lock()
        self._free: BaseException | bool | None = None

    def uploaded(self, result: Uploaded) -> None:
        """A file landed in the staging prefix (called on a pool thread)."""
        local = self.by_key[result.key]
        if result.size != local.size:
            raise TransferError(
                f"s3://{self.plan.base.bucket}/{result.key}: {result.size} bytes, not {local.size}"
            )
        with self._lock:
            self.staged[local.path] = result
        if local.path not in LAST and local.size <= self.publisher.copy_limit:
            self._futures.append(self.transfers.pool.submit(self._copy, local))

    def finish(self) -> None:
        wait_all(self._futures)
        later = [f for f in self.plan.files if f.path not in LAST and f.size > self.publisher.copy_limit]
        for local in later + self.last:
            self._copy(local)

    def settle(self) -> None:
        """After a failure: let copies in flight end (their keys are in `copied`) before the rollback."""
        wait(self._futures)

    def _ensure_free(self) -> None:
        with self._lock:
            if self._free is None:
                try:
                    self.publisher._check_still_free(self.plan)
                    self._free = True
                except BaseException as exc:
                    self._free = exc
            if isinstance(self._free, BaseException):
                raise self._free

    def _copy(self, local: LocalFile) -> None:
        self._ensure_free()
        staged = self.staged[local.path]
        key = self.plan.key(local.path)
        with self._lock:
            self.copied.append(key)
        etag = self.transfers.copy(staged.key, key, local.size, self.publisher.copy_limit)
        self.publisher._check_landed(self.transfers, key, local, staged, etag)


def choose_version(existing: dict[int, tuple[str, ...]], requested: int | None) -> tuple[int, str]:
    """(number, directory name): the requested number, or the highest existing + 1; zero-padded to the
    width of the existing names when they are zero-padded (00000123 → 00000124)."""
    number = requested if requested is not None else (max(existing) + 1 if existing else 1)
    names = [name.strip() for names in existing.values() for name in names]
    padded = [name for name in names if len(name) > 1 and name.startswith("0")]
    width = max((len(name) for name in padded), default=0)
    return number, str(number).zfill(width)


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _read_back_matches(transfers: Transfers, key: str, staged: Uploaded) -> bool:
    if not staged.part_etags:
        data_md5 = hashlib.md5(transfers.read_range(key, 0, staged.size), usedforsecurity=False)
        return plain_md5(staged.etag) and data_md5.hexdigest() == staged.etag
    etags = []
    for start in range(0, staged.size, staged.part_size):
        end = min(start + staged.part_size, staged.size)
        etags.append(hashlib.md5(transfers.read_range(key, start, end), usedforsecurity=False).hexdigest())
    return tuple(etags) == staged.part_etags and multipart_etag(etags) == staged.etag


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
