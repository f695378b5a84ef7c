"""Object transfers over `savedmodel.storage.S3Store` (one retry policy, one error classification):
parallel multipart uploads from files, completed only when the caller says so, and parallel ranged
downloads streamed to disk.

Memory stays bounded whatever the object size: uploads read each part from its file while sending it
(`FileSlice`), downloads write each range to its offset as it arrives, in `CHUNK` pieces.

Integrity:
- uploads: the payload of every request is SHA-256 signed (SigV4 with checksums `when_required`), so the
  server refuses a body that changed on the way; a multipart object's ETag must be the MD5 of its parts'
  ETags, as S3 defines it.
- downloads: every GET carries `If-Match: <the listed ETag>`, so every byte comes from the object that was
  listed (an object replaced mid-download fails with 412 instead of mixing two uploads); sizes are checked;
  an object fetched in one GET whose ETag is a plain MD5 has its MD5 checked while it streams. Large
  objects are not re-hashed: a multipart ETag cannot be recomputed without the uploader's part size, and
  Ceph RGW 16 ignores `GET ?partNumber=` (it answers with the whole object).
"""

from __future__ import annotations

import binascii
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from savedmodel.storage import S3Store, StorageError

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # as boto3's upload_file/download_file
MAX_PARTS = 10_000  # S3's limit per multipart upload
CHUNK = 1 * MiB  # read/write granularity of downloads
_PLAIN_MD5 = re.compile(r"\A[0-9a-f]{32}\Z")
_ONE_PART = re.compile(r"\A([0-9a-f]{32})-1\Z")

OnBytes = Callable[[int], None]


class TransferError(Exception):
    """What landed is not what was sent (a size or ETag mismatch): never retried, never accepted."""


@dataclass
class Upload:
    """A multipart upload to its final key. Until it is completed no listing, HEAD or GET shows the key:
    only ListMultipartUploads does."""

    key: str
    upload_id: str
    size: int
    part_size: int
    etags: dict[int, str] = field(default_factory=dict)  # part number -> the part's ETag, unquoted

    @property
    def parts(self) -> int:
        return max(1, -(-self.size // self.part_size))  # an empty file is one empty part

    def part_etags(self) -> list[str]:
        return [self.etags[n] for n in range(1, self.parts + 1)]


@dataclass(frozen=True)
class Download:
    key: str
    size: int
    etag: str | None
    path: Path


def part_size_for(size: int, minimum: int = PART_SIZE) -> int:
    """The part size for an object of `size` bytes: `minimum`, grown (in MiB) to stay within MAX_PARTS."""
    needed = -(-size // MAX_PARTS)
    return max(minimum, -(-needed // MiB) * MiB)


def plain_md5(etag: str | None) -> bool:
    return etag is not None and bool(_PLAIN_MD5.match(etag))


def multipart_etag(part_etags: Iterable[str]) -> str:
    """S3's ETag of a multipart object: MD5 of the concatenated part MD5s, dash, part count."""
    etags = list(part_etags)
    digest = hashlib.md5(b"".join(binascii.unhexlify(e) for e in etags), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(etags)}"


def md5_of_whole(etag: str | None) -> Callable[[bytes], bool] | None:
    """For an ETag that determines the MD5 of the whole object, a test of a finished MD5 digest against it;
    None for an ETag that does not (more than one part, or not MD5-based)."""
    if plain_md5(etag):
        return lambda digest: digest.hex() == etag
    one_part = _ONE_PART.match(etag or "")
    if one_part:
        return lambda digest: hashlib.md5(digest, usedforsecurity=False).hexdigest() == one_part.group(1)
    return None


def unquote(etag: str | None) -> str | None:
    return etag.strip('"') if etag else etag


class FileSlice:
    """Bytes [start, start+length) of a file as a seekable body (botocore reads it to sign, seeks back, then
    sends it), so a part is never held in memory whole."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
        self._start = start
        self._length = length
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._pos
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        data = os.pread(self._file.fileno(), size, self._start + self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Transfers:
    """Transfers within one bucket, run on a shared thread pool (`jobs` requests at a time)."""

    def __init__(
        self, store: S3Store, bucket: str, pool: ThreadPoolExecutor, on_bytes: OnBytes | None = None
    ):
        self.store = store
        self.bucket = bucket
        self.pool = pool
        self._on_bytes = on_bytes
        self._lock = threading.Lock()

    def _progress(self, n: int) -> None:
        if self._on_bytes is not None and n:
            with self._lock:
                self._on_bytes(n)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- uploads ----------------------------------------------------------------------------------------

    def begin_uploads(self, files: list[tuple[Path, str]], part_size: int = PART_SIZE) -> list[Upload]:
        """Begin a multipart upload for every (local path, key) pair, in parallel. Every file goes this way,
        a small one as a single part (the last part of an upload may have any size, even 0), so nothing is
        visible under any key until `complete`. On failure the uploads begun are aborted (they hold no
        parts yet)."""
        begun: list[Future] = []
        try:
            for path, key in files:
                begun.append(self.pool.submit(self._begin, key, path.stat().st_size, part_size))
            wait_all(begun)
            return [future.result() for future in begun]
        except BaseException:
            for future in begun:
                if future.done() and future.exception() is None:
                    with contextlib.suppress(StorageError):
                        self.abort(future.result())
            raise

    def send_parts(self, files: list[Path], uploads: list[Upload]) -> None:
        """Send every part of every upload from its file, all at once on the pool, file after file."""
        wait_all(
            [
                self.pool.submit(self._upload_part, path, upload, number)
                for path, upload in zip(files, uploads, strict=True)
                for number in range(1, upload.parts + 1)
            ]
        )

    def _begin(self, key: str, size: int, part_size: int) -> Upload:
        response = self.store.call(
            lambda c: c.create_multipart_upload(Bucket=self.bucket, Key=key), f"upload {self._url(key)}"
        )
        return Upload(key, response["UploadId"], size, part_size_for(size, part_size))

    def _upload_part(self, path: Path, upload: Upload, number: int) -> None:
        start = (number - 1) * upload.part_size
        length = min(upload.part_size, upload.size - start)

        def send(client):
            with FileSlice(path, start, length) as body:
                return client.upload_part(
                    Bucket=self.bucket,
                    Key=upload.key,
                    UploadId=upload.upload_id,
                    PartNumber=number,
                    Body=body,
                )

        response = self.store.call(send, f"upload part {number} of {self._url(upload.key)}")
        self._progress(length)
        upload.etags[number] = unquote(response["ETag"])

    def complete(self, upload: Upload) -> str:
        """Complete an upload (the object appears whole, at once) and check it: HEAD gives the size of the
        file and the ETag S3 defines for the parts the server acknowledged (RGW 16 answers the completion
        without an ETag). Returns the ETag; TransferError when what landed differs."""
        etags = upload.part_etags()
        listing = {"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in enumerate(etags, 1)]}
        response = self.store.call(
            lambda c: c.complete_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, MultipartUpload=listing
            ),
            f"complete the upload of {self._url(upload.key)}",
        )
        size, etag = self.head(upload.key)
        url = self._url(upload.key)
        if size != upload.size:
            raise TransferError(f"{url} holds {size} bytes, not the {upload.size} uploaded")
        # Where parts have MD5 ETags the object's is defined by them; else (AWS with SSE-KMS, say) it must
        # at least be the one the completion answered.
        expected = unquote(response.get("ETag"))
        if all(plain_md5(e) for e in etags):
            expected = multipart_etag(etags)
        if expected and etag != expected:
            raise TransferError(
                f"{url}: the server assembled ETag {etag}, not {expected} from the parts it acknowledged"
            )
        return etag

    def abort(self, upload: Upload) -> None:
        """Abort an upload: its parts are stored (and billed) until then, though no listing shows them.
        StorageError when the server would not."""
        try:
            self.store.call(
                lambda c: c.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
                ),
                f"abort the upload of {self._url(upload.key)}",
            )
        except StorageError as exc:
            if "NoSuchUpload" not in exc.message:  # already completed or aborted
                raise

    # -- small operations ---------------------------------------------------------------------------------

    def head(self, key: str) -> tuple[int, str | None]:
        """(size, ETag) of an object; NoSuchKey when it does not exist."""
        response = self.store.call(
            lambda c: c.head_object(Bucket=self.bucket, Key=key), f"read {self._url(key)}"
        )
        return int(response["ContentLength"]), unquote(response.get("ETag"))

    def keys_under(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token = None
        while True:
            page = self.store.list_page(
                self.bucket, prefix, delimiter=None, token=token, max_keys=1000, deadline=None
            )
            keys += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return keys

    def delete(self, keys: list[str]) -> None:
        """Delete keys (in batches of 1000); StorageError naming the first key the server refused."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            response = self.store.call(
                lambda c, b=batch: c.delete_objects(Bucket=self.bucket, Delete={"Objects": b, "Quiet": True}),
                f"delete {len(batch)} objects in s3://{self.bucket}/",
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    "rejected", f"cannot delete {self._url(first.get('Key', '?'))}: {first.get('Message')}"
                )

    def delete_tree(self, prefix: str, keys: list[str] | None = None) -> None:
        """Delete everything under `prefix` (a directory, ending in '/'), then the directories themselves,
        deepest first: SeaweedFS keeps an emptied directory listed as a common prefix (an *empty version*
        to TF Serving when it is a numbered one) until its own key is deleted; S3 and RGW ignore those
        deletes."""
        keys = self.keys_under(prefix) if keys is None else keys
        self.delete(keys)
        directories = {prefix}
        for key in keys:
            parts = key[len(prefix) :].split("/")[:-1]
            directories.update(prefix + "/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
        self.delete(sorted(directories, key=lambda d: (-d.count("/"), d)))

    # -- downloads ----------------------------------------------------------------------------------------

    def download_files(self, items: list[Download], part_size: int = PART_SIZE) -> None:
        """Download objects to local files (created or truncated), ranges in parallel on the pool, each
        GET conditional on the listed ETag. TransferError on a size or MD5 mismatch."""
        handles: list[int] = []
        futures: list[Future] = []
        try:
            for item in items:
                item.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(item.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                handles.append(fd)
                if item.size <= part_size:
                    futures.append(self.pool.submit(self._fetch, item, fd, 0, item.size, True))
                    continue
                os.ftruncate(fd, item.size)
                for start in range(0, item.size, part_size):
                    length = min(part_size, item.size - start)
                    futures.append(self.pool.submit(self._fetch, item, fd, start, length, False))
            wait_all(futures)
            for item, fd in zip(items, handles, strict=True):
                size = os.fstat(fd).st_size
                if size != item.size:
                    raise TransferError(f"{self._url(item.key)}: {size} bytes arrived, {item.size} listed")
        finally:
            for fd in handles:
                os.close(fd)

    def _fetch(self, item: Download, fd: int, start: int, length: int, whole: bool) -> None:
        md5_matches = md5_of_whole(item.etag) if whole else None

        def fetch(client) -> int:
            kwargs = {"Bucket": self.bucket, "Key": item.key}
            if item.etag:
                kwargs["IfMatch"] = f'"{item.etag}"'
            if length:
                kwargs["Range"] = f"bytes={start}-{start + length - 1}"
            digest = hashlib.md5(usedforsecurity=False) if md5_matches else None
            written = 0
            if length == 0:
                return 0
            response = client.get_object(**kwargs)
            with response["Body"] as body:
                while chunk := body.read(CHUNK):
                    os.pwrite(fd, chunk, start + written)
                    written += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
            start_writeback(fd, start, written)
            if written != length:
                raise TransferError(
                    f"{self._url(item.key)}: {written} bytes arrived for bytes {start}-{start + length - 1}"
                )
            if digest is not None and not md5_matches(digest.digest()):
                raise TransferError(
                    f"{self._url(item.key)}: the MD5 of what arrived, {digest.hexdigest()}, does not match "
                    f"its ETag {item.etag}"
                )
            return written

        self._progress(self.store.call(fetch, f"read {self._url(item.key)}"))


def _sync_file_range():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a downloaded range to disk now (Linux sync_file_range, asynchronous), so the fsync
    before the version's rename finds little left to do; a no-op where it is not available."""
    if _SYNC_FILE_RANGE is not None and length > 0:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def wait_all(futures: list[Future]) -> None:
    """Wait for every future; on the first failure cancel what has not started and raise it."""
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in done:
        if future.exception() is not None:
            for other in pending:
                other.cancel()
            wait(pending)
            raise future.exception()


def transfer_store(settings, *, jobs: int = 10, read_timeout: float = 60.0, max_attempts: int = 5) -> S3Store:
    """An S3Store sized for transfers: a connection per job, patient timeouts, more retries than a check."""
    return S3Store(
        settings,
        connect_timeout=5.0,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
        max_connections=jobs + 2,
    )
