"""Listings the contract needs: the base path's children (one delimiter listing, paginated) and the keys
of one version directory (one listing, paginated). S3 has no directories: a child directory is a common
prefix; a zero-byte key ending in '/' is a console "folder marker", not a file."""

from __future__ import annotations

from .storage import S3Store
from .trees import Children, ObjectEntry

__all__ = ["Children", "ObjectEntry", "directory_prefix", "list_children", "list_tree"]

PAGE_SIZE = 1000  # S3's maximum; tests pass smaller pages to exercise pagination


def directory_prefix(prefix: str) -> str:
    return prefix if prefix == "" or prefix.endswith("/") else prefix + "/"


def list_children(
    store: S3Store, bucket: str, prefix: str, *, deadline: float | None, page_size: int = PAGE_SIZE
) -> Children:
    base = directory_prefix(prefix)
    directories: list[str] = []
    objects: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.list_page(
            bucket, base, delimiter="/", token=token, max_keys=page_size, deadline=deadline
        )
        pages += 1
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(base) :].rstrip("/")
            if name:
                directories.append(name)
        for item in page.get("Contents", []):
            name = item["Key"][len(base) :]
            if name and not name.endswith("/"):
                objects.append(name)
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
    return Children(tuple(sorted(set(directories))), tuple(sorted(set(objects))), pages)


def list_tree(
    store: S3Store, bucket: str, prefix: str, *, deadline: float | None, page_size: int = PAGE_SIZE
) -> tuple[ObjectEntry, ...]:
    """Every key under a directory (recursive), relative to it; folder markers included (is_marker)."""
    base = directory_prefix(prefix)
    entries: list[ObjectEntry] = []
    token = None
    while True:
        page = store.list_page(
            bucket, base, delimiter=None, token=token, max_keys=page_size, deadline=deadline
        )
        for item in page.get("Contents", []):
            entries.append(ObjectEntry(item["Key"][len(base) :], int(item.get("Size", 0)), _etag(item)))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
    return tuple(sorted(entries, key=lambda e: e.path))


def _etag(item: dict) -> str | None:
    etag = item.get("ETag")
    return etag.strip('"') if etag else None
