"""The contract's view of a base path in S3: delimiter listings for children, one recursive listing per
version, ranged GETs for saved_model.pb, each inside the caller's deadline."""

from __future__ import annotations

from dataclasses import dataclass

from rulebook.s3 import S3Path

from .listing import PAGE_SIZE, list_children, list_tree
from .storage import S3Store
from .trees import Children, ObjectEntry


@dataclass(frozen=True)
class S3VersionTree:
    store: S3Store
    bucket: str
    prefix: str  # the version directory's key prefix, without the trailing '/'
    deadline: float | None = None
    page_size: int = PAGE_SIZE

    def entries(self) -> tuple[ObjectEntry, ...]:
        return list_tree(
            self.store, self.bucket, self.prefix, deadline=self.deadline, page_size=self.page_size
        )

    def read(self, path: str, start: int, end: int) -> bytes:
        return self.store.get_range(self.bucket, f"{self.prefix}/{path}", start, end, deadline=self.deadline)


@dataclass(frozen=True)
class S3BaseTree:
    store: S3Store
    location: S3Path
    deadline: float | None = None
    page_size: int = PAGE_SIZE

    def children(self) -> Children:
        return list_children(
            self.store,
            self.location.bucket,
            self.location.prefix,
            deadline=self.deadline,
            page_size=self.page_size,
        )

    def version(self, name: str) -> S3VersionTree:
        return S3VersionTree(
            self.store, self.location.bucket, self.location.child(name), self.deadline, self.page_size
        )
