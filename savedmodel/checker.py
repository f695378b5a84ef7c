"""SavedModelChecker: lists, selects and checks versions over S3 at the cost the contract needs, no more."""

from __future__ import annotations

import time

from rulebook.policy import VersionPolicy
from rulebook.s3 import S3Path

from . import contract
from .listing import PAGE_SIZE, list_children, list_tree
from .pbwire import RangedSource, SavedModelInfo, WireError, read_saved_model, read_saved_model_text
from .report import ModelReport, TransferStats, Verdict, VersionReport
from .storage import (
    DEFAULT_MAX_CONNECTIONS,
    Meter,
    NoSuchBucket,
    NoSuchKey,
    S3Settings,
    S3Store,
    StorageError,
    metering,
)

DEFAULT_TAGS = frozenset({"serve"})
MAX_PBTXT_BYTES = 16 * 1024 * 1024


class SavedModelChecker:
    """One per S3 endpoint and credentials; thread-safe; reuses its boto3 clients."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
        page_size: int = PAGE_SIZE,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.settings = settings
        self.store = S3Store(
            settings,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            max_connections=max_connections,
        )
        self.page_size = page_size

    def verify(
        self,
        base_path: str,
        policy: VersionPolicy,
        *,
        signature: str | None = None,
        tags: frozenset[str] = DEFAULT_TAGS,
        deadline: float | None = None,
    ) -> ModelReport:
        """Check the versions `policy` selects. Never raises for storage problems (verdict CANNOT_VERIFY)."""
        location = S3Path.parse(base_path)
        return self._run(location, policy, signature, frozenset(tags), deadline)

    def inspect(
        self,
        base_path: str,
        *,
        version: int | None = None,
        signature: str | None = None,
        tags: frozenset[str] = DEFAULT_TAGS,
        deadline: float | None = None,
    ) -> ModelReport:
        """Like verify with the `all` policy (or just `version`): tags, signatures and files of each."""
        policy = VersionPolicy("all") if version is None else VersionPolicy("specific", versions=(version,))
        return self.verify(base_path, policy, signature=signature, tags=tags, deadline=deadline)

    # -- internals ----------------------------------------------------------------------------------------

    def _run(
        self,
        location: S3Path,
        policy: VersionPolicy,
        signature: str | None,
        tags: frozenset[str],
        deadline: float | None,
    ) -> ModelReport:
        meter = Meter()
        base = str(location)
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
                children = list_children(
                    self.store, location.bucket, location.prefix, deadline=deadline, page_size=self.page_size
                )
            except NoSuchBucket:
                problems.append(f"bucket {location.bucket!r} does not exist")
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
                    versions.append(
                        self._check_version(
                            location,
                            number,
                            name,
                            tags,
                            signature,
                            deadline,
                            is_object=name in index.object_versions,
                        )
                    )
                except StorageError as exc:
                    return finish(Verdict.CANNOT_VERIFY, exc)
                except NoSuchBucket:
                    problems.append(f"bucket {location.bucket!r} disappeared during the check")
                    return finish(Verdict.INVALID)
        invalid = problems or any(v.selected and not v.valid for v in versions)
        return finish(Verdict.INVALID if invalid else Verdict.VALID)

    def _check_version(
        self,
        location: S3Path,
        number: int,
        name: str,
        tags: frozenset[str],
        signature: str | None,
        deadline: float | None,
        *,
        is_object: bool,
    ) -> VersionReport:
        meter = Meter()
        with metering(meter):
            if is_object:
                reasons = [
                    f"{name!r} is an object, not a directory: TF Serving would try to load it and fail"
                ]
                return VersionReport(number, name, True, False, tuple(reasons))
            prefix = location.child(name)
            entries = list_tree(
                self.store, location.bucket, prefix, deadline=deadline, page_size=self.page_size
            )
            files = contract.real_files(entries)
            reasons = contract.layout_reasons(files, entries)
            model_file = contract.saved_model_file(files)
            info: SavedModelInfo | None = None
            chosen = None
            if not reasons and model_file is not None:
                info, read_reason = self._read_model(
                    location.bucket, f"{prefix}/{model_file.path}", model_file.size, model_file.path, deadline
                )
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

    def _read_model(
        self, bucket: str, key: str, size: int, name: str, deadline: float | None
    ) -> tuple[SavedModelInfo | None, str | None]:
        def fetch(start: int, end: int) -> bytes:
            return self.store.get_range(bucket, key, start, end, deadline=deadline)

        try:
            if name == contract.SAVED_MODEL_PBTXT:
                if size > MAX_PBTXT_BYTES:
                    return None, (
                        f"{name} is {size} bytes; text SavedModels over {MAX_PBTXT_BYTES} bytes are "
                        "not checked: export saved_model.pb instead"
                    )
                return read_saved_model_text(fetch(0, size).decode("utf-8", errors="replace")), None
            return read_saved_model(RangedSource(fetch, size)), None
        except WireError as exc:
            return None, f"{name} is truncated or corrupt: {exc}; re-upload it"
        except NoSuchKey:
            return None, f"{name} was listed but vanished before it could be read (being replaced?)"


def deadline_in(seconds: float | None) -> float | None:
    """An absolute deadline `seconds` from now (None stays None)."""
    return None if seconds is None else time.monotonic() + seconds
