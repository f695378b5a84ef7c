"""SavedModelChecker: lists, selects and checks versions over S3 at the cost the contract needs, no more."""

from __future__ import annotations

import time

from rulebook.policy import VersionPolicy, parse_version_name
from rulebook.s3 import S3Path

from .evaluate import DEFAULT_TAGS, assess_model, assess_version
from .listing import PAGE_SIZE
from .report import ModelReport, VersionReport
from .s3tree import S3BaseTree
from .storage import DEFAULT_MAX_CONNECTIONS, S3Settings, S3Store

__all__ = ["DEFAULT_TAGS", "S3Path", "SavedModelChecker", "deadline_in"]


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
        store: S3Store | None = None,
    ) -> None:
        """`store` shares an existing S3Store (its timeouts, retries and connection pool then apply)."""
        self.settings = settings
        self.store = store or S3Store(
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

    def check_version(
        self,
        base_path: str,
        name: str,
        *,
        signature: str | None = None,
        tags: frozenset[str] = DEFAULT_TAGS,
        deadline: float | None = None,
    ) -> VersionReport:
        """One version directory (`name` under `base_path`), whatever the policy; its files carry their
        ETags. StorageError and NoSuchBucket propagate."""
        number = parse_version_name(name)
        if number is None:
            raise ValueError(f"{name!r} is not a version directory name")
        tree = S3BaseTree(self.store, S3Path.parse(base_path), deadline, self.page_size).version(name)
        return assess_version(tree, number, name, frozenset(tags), signature)

    def _run(
        self,
        location: S3Path,
        policy: VersionPolicy,
        signature: str | None,
        tags: frozenset[str],
        deadline: float | None,
    ) -> ModelReport:
        tree = S3BaseTree(self.store, location, deadline, self.page_size)
        return assess_model(
            tree, str(location), policy, signature=signature, tags=tags, missing_bucket=location.bucket
        )


def deadline_in(seconds: float | None) -> float | None:
    """An absolute deadline `seconds` from now (None stays None)."""
    return None if seconds is None else time.monotonic() + seconds
