"""S3 endpoint rules: normalization, the operator allow-list, and addresses never contacted (SSRF).

A Deployment's S3_ENDPOINT is written by whoever can create Deployments, and a SigV4 request hands our key id
to whoever receives it. So the webhook only ever talks to endpoints the operator listed, compared after
normalization (scheme, lower-case host, explicit port), and never to link-local or cloud metadata addresses
even if listed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
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
    raw = (env.get("S3_ENDPOINT") or "").strip()
    if not raw:
        return None
    if "://" in raw:
        return raw
    use_https = (env.get("S3_USE_HTTPS") or "1").strip() not in ("0", "false", "False")
    return f"{'https' if use_https else 'http'}://{raw}"


@dataclass(frozen=True)
class AllowList:
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def parse(cls, urls: Iterable[str]) -> AllowList:
        return cls(tuple(sorted({normalize(url) for url in urls if url.strip()})))

    def match(self, url: str) -> Endpoint:
        """The allowed endpoint equal to `url` after normalization; EndpointError otherwise."""
        endpoint = normalize(url)
        if endpoint not in self.endpoints:
            raise EndpointError(f"{endpoint.url} is not on the webhook's allow-list")
        return endpoint

    def describe(self, limit: int = 3) -> str:
        urls = [e.url for e in self.endpoints]
        if not urls:
            return "(empty)"
        more = f" and {len(urls) - limit} more" if len(urls) > limit else ""
        return ", ".join(urls[:limit]) + more
