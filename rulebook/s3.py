"""S3 as TF Serving reads it: `s3://bucket/prefix` paths, bucket names, and the endpoint its S3 filesystem
derives from `S3_ENDPOINT`/`S3_USE_HTTPS`.

Endpoints are compared normalised (scheme, lower-case host, explicit port). A Deployment's S3_ENDPOINT is
written by whoever can create Deployments, and a SigV4 request hands the caller's key id to whoever receives
it: addresses that must never be contacted (link-local, cloud metadata) are refused here, for every caller.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ENDPOINT_VARIABLE = "S3_ENDPOINT"
HTTPS_VARIABLE = "S3_USE_HTTPS"
VERIFY_SSL_VARIABLE = "S3_VERIFY_SSL"
REGION_VARIABLE = "AWS_REGION"
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "192.0.0.192",
    )
)


class EndpointError(ValueError):
    """An endpoint that is malformed or forbidden."""


@dataclass(frozen=True, order=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


@functools.lru_cache(maxsize=1024)
def normalize(url: str) -> Endpoint:
    """`http(s)://host[:port][/]` → Endpoint; EndpointError for anything else or a forbidden address."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"{url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise EndpointError(f"{url!r} must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise EndpointError(f"{url!r} must not contain credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EndpointError(f"{url!r} must not have a path, query or fragment")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise EndpointError(f"{url!r} has no host")
    endpoint = Endpoint(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])
    reason = forbidden_reason(endpoint.host)
    if reason:
        raise EndpointError(f"{url!r} is {reason}")
    return endpoint


def forbidden_reason(host: str) -> str | None:
    """Why a host must never be contacted, or None."""
    if host in _METADATA_HOSTS:
        return "a cloud metadata host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast:
        return "not a unicast address"
    return None


def workload_endpoint(env: Mapping[str, str]) -> str | None:
    """The URL TF Serving's S3 filesystem would use from S3_ENDPOINT/S3_USE_HTTPS, or None when unset."""
    raw = (env.get(ENDPOINT_VARIABLE) or "").strip()
    if not raw:
        return None
    if "://" in raw:
        return raw
    # TensorFlow's S3 filesystem: plain HTTP only when S3_USE_HTTPS starts with '0' (so "false" means HTTPS).
    use_https = not (env.get(HTTPS_VARIABLE) or "1").startswith("0")
    return f"{'https' if use_https else 'http'}://{raw}"


_ENDPOINT_TEXT = re.compile(
    r"^(?:https?://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[1-9][0-9]{0,4})?$"
)


def endpoint_text_problem(raw: str) -> str | None:
    """Why an S3_ENDPOINT value is not a plain `[http(s)://]HOST[:PORT]`, or None (also for unset).

    TF Serving's S3 filesystem uses the value as written, while endpoints are compared normalised: a value
    whose normal form is on an allow-list but whose text differs (spaces, a trailing '/' or '#', a port
    with leading zeros) would pass the comparison and reach TF Serving raw.
    """
    if not raw:
        return None
    if raw != raw.strip():
        return "has leading or trailing whitespace"
    if not _ENDPOINT_TEXT.match(raw):
        return "is not [http(s)://]HOST[:PORT] (no path, '/', '#', '?', credentials or leading zeros)"
    return None


def tfserving_env(url: str) -> dict[str, str]:
    """What TF Serving's S3 filesystem needs to reach `url`: S3_ENDPOINT=host:port and S3_USE_HTTPS."""
    parts = urlsplit(url.strip())
    return {ENDPOINT_VARIABLE: parts.netloc, HTTPS_VARIABLE: "1" if parts.scheme == "https" else "0"}


def bucket_problem(bucket: str) -> str | None:
    """Why `bucket` is not a valid S3 bucket name (AWS general purpose bucket naming rules), or None."""
    if not _BUCKET.match(bucket):
        return (
            "3 to 63 characters of lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "no '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(bucket)
        return "must not look like an IP address"
    except ValueError:
        pass
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        return "must not start with xn-- or sthree- nor end with -s3alias or --ol-s3"
    return None


MAX_KEY_BYTES = 1024
# Characters XML 1.0 cannot carry: S3 lists keys in XML, so no listing could return such a key.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def key_problem(key: str) -> str | None:
    """Why `key` (or a prefix under which version directories would be keys) cannot be an S3 object key."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8 (a lone surrogate)"
    if size > MAX_KEY_BYTES:
        return f"it is {size} bytes of UTF-8; S3 keys are at most {MAX_KEY_BYTES}"
    if _NOT_XML.search(key):
        return "it contains a control character"
    return None


@dataclass(frozen=True)
class S3Path:
    """`s3://bucket/prefix`: a model's base path."""

    bucket: str
    prefix: str  # without leading or trailing '/'

    @classmethod
    def parse(cls, base_path: str) -> S3Path:
        """ValueError, saying why, for anything TF Serving could never read as a model's base path."""
        if not isinstance(base_path, str) or not base_path.startswith("s3://"):
            raise ValueError(f"base path must look like s3://bucket/prefix, not {base_path!r}")
        bucket, _, prefix = base_path[len("s3://") :].partition("/")
        why = bucket_problem(bucket)
        if why:
            raise ValueError(f"bucket {bucket!r} is not a valid S3 bucket name: {why}")
        prefix = prefix.strip("/")
        if "//" in prefix:
            raise ValueError(f"base path {base_path!r} contains an empty path segment")
        why = key_problem(prefix)
        if why:
            raise ValueError(f"the prefix is not a valid S3 key: {why}")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def child(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name
