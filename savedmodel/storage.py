"""S3 access for the checks: one boto3 client per endpoint, path-style, SigV4, explicit timeouts, our own
retry budget inside the caller's deadline, and request/byte counting through botocore events.

Configuration follows TF Serving's S3 file system (tensorflow/core/platform/s3/s3_file_system.cc):
S3_ENDPOINT (host:port), S3_USE_HTTPS ("0" means http, anything else https, https when unset), S3_VERIFY_SSL
("0" disables verification), AWS_REGION then S3_REGION, and the AWS credential variables."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    SSLError,
)

from rulebook.s3 import workload_endpoint

from .s3reads import DirectReads, UnreadableAnswer
from .trees import Meter, NoSuchBucket, NoSuchKey, StorageError, count, metering

__all__ = ["Meter", "NoSuchBucket", "NoSuchKey", "S3Settings", "S3Store", "StorageError", "metering"]

_RETRYABLE_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestTimeTooSkewed",
}
_MIN_USEFUL_SECONDS = 0.05
DEFAULT_MAX_CONNECTIONS = 10  # botocore's own default pool size


@dataclass(frozen=True)
class S3Settings:
    """Where the models live and how to authenticate; `from_env` reads the environment TF Serving reads."""

    endpoint_url: str | None
    region: str = "us-east-1"
    verify_ssl: bool = True
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    anonymous: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], endpoint_url: str | None = None) -> S3Settings:
        endpoint = endpoint_url or _endpoint_from_env(env)
        region = env.get("AWS_REGION") or env.get("S3_REGION") or "us-east-1"
        verify = env.get("S3_VERIFY_SSL", "1")[:1] != "0"
        return cls(
            endpoint_url=endpoint,
            region=region,
            verify_ssl=verify,
            access_key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
        )

    def describe(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"


def _endpoint_from_env(env: Mapping[str, str]) -> str | None:
    endpoint = workload_endpoint(env)
    return endpoint.rstrip("/") if endpoint else None


def _count_request(**_: Any) -> None:
    count(requests=1)


def _count_response(response_dict: dict | None = None, **_: Any) -> None:
    if not response_dict:
        return
    headers = response_dict.get("headers") or {}
    length = headers.get("content-length")
    if length is None:
        body = response_dict.get("body")
        size = len(body) if isinstance(body, bytes | bytearray) else 0
    else:
        size = int(length)
    count(received=size)


def _no_region_redirect(request_dict=None, **_kwargs) -> None:
    """Mark every request to a custom endpoint as already redirected, so botocore's region redirector
    leaves it alone: a custom endpoint has no regions to follow, and an endpoint answering 301/307 to
    everything would otherwise send the redirector into endless recursion. Redirects are never followed."""
    if request_dict is not None:
        request_dict.setdefault("context", {}).setdefault("s3_redirect", {})["redirected"] = True


# -- the store --------------------------------------------------------------------------------------------


class S3Store:
    """Thread-safe S3 reads with a deadline: list pages and ranged GETs, retried within the deadline."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0 or max_attempts < 1 or max_connections < 1:
            raise ValueError("timeouts must be positive, max_attempts and max_connections at least 1")
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self.max_connections = max_connections
        self._clients: dict[tuple[float, float], tuple[Any, DirectReads | None]] = {}
        self._session = (
            boto3.session.Session()
        )  # shared: a client from a new session costs ~70 ms, ~4 ms here
        self._credentials: Any = None
        self._lock = threading.Lock()
        self._client(connect_timeout, read_timeout)  # now: a bad endpoint fails here, not mid-check

    # Clients are thread-safe; one per (connect, read) timeout pair, so a call close to the deadline gets
    # socket timeouts that end before it. Each comes with the direct reads through its HTTP session.
    def _client(self, connect: float, read: float):
        return self._pair(connect, read)[0]

    def _pair(self, connect: float, read: float) -> tuple[Any, DirectReads | None]:
        key = (_tenths_down(connect), _tenths_down(read))  # never longer than asked (except below 0.1 s)
        with self._lock:
            pair = self._clients.get(key)
            if pair is None:
                if len(self._clients) > 32:
                    self._clients.clear()
                client = self._make_client(*key)
                pair = (client, self._direct_reads(client))
                self._clients[key] = pair
            return pair

    def _direct_reads(self, client) -> DirectReads | None:
        s = self.settings
        if s.endpoint_url is None:
            return None  # AWS S3 itself: the boto3 client, whose region redirects it may need
        if self._credentials is None and not s.anonymous:
            # What the client signs with: the keys it was given, else the session's provider chain.
            explicit = s.access_key is not None or s.secret_key is not None
            self._credentials = (
                Credentials(s.access_key, s.secret_key, s.session_token)
                if explicit
                else self._session.get_credentials()
            )
        return DirectReads(client, self._credentials, s.region, anonymous=s.anonymous)

    def _make_client(self, connect: float, read: float):
        s = self.settings
        config = Config(
            s3={"addressing_style": "path"},
            signature_version=UNSIGNED if s.anonymous else "s3v4",
            connect_timeout=max(connect, 0.1),
            read_timeout=max(read, 0.1),
            retries={"total_max_attempts": 1, "mode": "standard"},  # we retry ourselves, inside the deadline
            tcp_keepalive=True,
            # Threads sharing this client each hold a connection: a smaller pool opens and discards extras.
            max_pool_connections=self.max_connections,
            # botocore >= 1.36 adds CRC checksums to every upload by default (aws-chunked trailers over
            # https), which third-party stores refuse or mis-verify; checksums only where the API requires
            # them, as before. The payload is still SHA-256 signed (always over http; over https whenever
            # no Content-MD5/checksum header is sent), so the server verifies every body it receives.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = self._session.client(
            "s3",
            endpoint_url=s.endpoint_url,
            region_name=s.region,
            verify=s.verify_ssl,
            aws_access_key_id=s.access_key,
            aws_secret_access_key=s.secret_key,
            aws_session_token=s.session_token,
            config=config,
        )
        client.meta.events.register("before-send.s3", _count_request)
        client.meta.events.register("response-received.s3", _count_response)
        if s.endpoint_url is not None:
            client.meta.events.register_first("needs-retry.s3", _no_region_redirect)
        return client

    def list_page(
        self,
        bucket: str,
        prefix: str,
        *,
        delimiter: str | None,
        token: str | None,
        max_keys: int,
        deadline: float | None,
    ) -> dict:
        """One ListObjectsV2 page (CommonPrefixes, Contents with Key/Size/ETag, IsTruncated,
        NextContinuationToken)."""

        def direct(reads: DirectReads) -> dict:
            return reads.list_objects_v2(bucket, prefix, delimiter=delimiter, token=token, max_keys=max_keys)

        def boto(client) -> dict:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            return client.list_objects_v2(**kwargs)

        return self._read(direct, boto, deadline, f"list s3://{bucket}/{prefix}")

    def get_range(self, bucket: str, key: str, start: int, end: int, *, deadline: float | None) -> bytes:
        """Bytes [start, end) of an object (end exclusive)."""

        def direct(reads: DirectReads) -> bytes:
            status, headers, data = reads.get_range(bucket, key, start, end)
            return _the_range(data, status, "content-range" in headers, start, end)

        def boto(client) -> bytes:
            response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
            with response["Body"] as body:
                data = body.read()
            status = response["ResponseMetadata"].get("HTTPStatusCode")
            return _the_range(data, status, "ContentRange" in response, start, end)

        return self._read(direct, boto, deadline, f"read s3://{bucket}/{key}")

    def _read(self, direct, boto, deadline: float | None, what: str):
        """A read through the direct path where there is one (custom endpoints), else the boto3 client."""
        return self._call(
            lambda client, reads: boto(client) if reads is None else direct(reads), deadline, what
        )

    def call(
        self,
        operation: Callable[[Any], Any],
        what: str,
        *,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ):
        """`operation(client)` with this store's retries, timeouts and error classification: StorageError
        (kind as below), NoSuchBucket, NoSuchKey (when `what` starts with "read"). `what` reads as
        "cannot <what>"; the operation must be safe to repeat. `read_timeout` overrides the store's for
        operations the server takes long to answer (a server-side copy of gigabytes)."""
        return self._call(lambda client, _: operation(client), deadline, what, read_timeout)

    def _call(self, operation, deadline: float | None, what: str, read_timeout: float | None = None):
        """`operation(client, direct reads or None)`, retried as `call` says."""
        started = time.monotonic()
        last: StorageError | None = None
        for attempt in range(1, self.max_attempts + 1):
            connect, read = self.connect_timeout, read_timeout or self.read_timeout
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining < _MIN_USEFUL_SECONDS:
                    raise _timed_out(what, started, last)
                connect, read = min(connect, remaining), min(read, remaining)
            try:
                return operation(*self._pair(connect, read))
            except ClientError as exc:
                last = _classify_client_error(exc, what)
            except ParamValidationError as exc:
                # botocore refused the request before sending it: the input is invalid, not the storage down
                raise ValueError(f"cannot {what}: {_short(exc)}") from exc
            except NoCredentialsError as exc:
                raise StorageError("access-denied", f"cannot {what}: no S3 credentials found") from exc
            except SSLError as exc:
                raise StorageError("tls", f"cannot {what}: {_tls_problem(exc, self.settings)}") from exc
            except (EndpointConnectionError, ConnectTimeoutError) as exc:
                last = StorageError(
                    "unreachable", f"cannot {what}: {self.settings.describe()} is unreachable ({_short(exc)})"
                )
            except ReadTimeoutError as exc:
                last = StorageError(
                    "timed-out", f"cannot {what}: no answer within {read:.1f} s ({_short(exc)})"
                )
            except (ConnectionClosedError, ConnectionError, OSError) as exc:
                last = StorageError(
                    "connection-reset", f"cannot {what}: the connection was reset ({_short(exc)})"
                )
            except BotoCoreError as exc:
                last = StorageError("connection-reset", f"cannot {what}: {_short(exc)}")
            except UnreadableAnswer as exc:
                last = StorageError("server-error", f"cannot {what}: {exc}")
            if last.kind not in ("unreachable", "timed-out", "connection-reset", "throttled", "server-error"):
                raise last
            if attempt == self.max_attempts:
                break
            pause = min(0.05 * 2 ** (attempt - 1), 0.5) * (0.5 + random.random())
            if deadline is not None and time.monotonic() + pause + _MIN_USEFUL_SECONDS >= deadline:
                raise _timed_out(what, started, last)
            time.sleep(pause)
        assert last is not None
        raise StorageError(last.kind, f"{last.message}; gave up after {self.max_attempts} attempts")


def _the_range(data: bytes, status: int | None, ranged: bool, start: int, end: int) -> bytes:
    if status == 200 and not ranged:
        return data[start:end]  # a server that ignores Range sends the whole object
    return data


def _tls_problem(exc: SSLError, settings: S3Settings) -> str:
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (
            f"the TLS handshake with {settings.describe()} failed (wrong version number): it answers plain "
            "HTTP; set S3_USE_HTTPS=0 (or use an http:// endpoint URL)"
        )
    return f"the TLS handshake with {settings.describe()} failed ({_short(exc)})"


def _tenths_down(seconds: float) -> float:
    return max(math.floor(seconds * 10) / 10, 0.1)


def _timed_out(what: str, started: float, last: StorageError | None) -> StorageError:
    elapsed = time.monotonic() - started
    detail = f" (last error: {last.message})" if last else ""
    return StorageError(
        "timed-out", f"timed out after {elapsed:.1f} s: the deadline ended before we could {what}{detail}"
    )


def _classify_client_error(exc: ClientError, what: str):
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "NoSuchBucket":
        raise NoSuchBucket(what) from exc
    if code in ("NoSuchKey", "404") or (status == 404 and what.startswith("read")):
        raise NoSuchKey(what) from exc
    if status == 412 or code == "PreconditionFailed":
        return StorageError("precondition-failed", f"cannot {what}: the object changed (412 {code})")
    if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return StorageError(
            "access-denied",
            f"cannot {what}: access denied ({code or status}); check the credentials and the bucket policy",
        )
    if code in ("SlowDown", "Throttling", "ThrottlingException") or status in (429, 503):
        return StorageError(
            "throttled", f"cannot {what}: the server is throttling requests ({code or status})"
        )
    if status >= 500 or code in _RETRYABLE_CODES:
        return StorageError("server-error", f"cannot {what}: server error {status} {code}".rstrip())
    return StorageError("rejected", f"cannot {what}: the server answered {status} {code}".rstrip())


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
