"""The webhook's configuration, parsed purely from an environment mapping (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from rulebook.images import GPU_MARKER, STOCK_TFSERVING
from rulebook.names import WEBHOOK_NAME, WebhookEnv
from rulebook.s3 import Endpoint, EndpointError, normalize
from webhook.limits import MAX_BODY_BYTES

Choice = Literal["deny", "warn"]

DEFAULT_WEBHOOK_NAME = WEBHOOK_NAME
DEFAULT_TIMEOUT_SECONDS = 10.0  # the API server's default timeoutSeconds when ?timeout= is absent


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


class ConfigError(ValueError):
    """The environment does not describe a valid configuration."""


@dataclass(frozen=True)
class WebhookConfig:
    allowed_s3_endpoints: AllowList = field(default_factory=lambda: AllowList(()))
    default_s3_endpoint: Endpoint | None = None
    on_unverifiable: Choice = "deny"
    on_unresolved: Choice = "deny"
    on_unknown_variant: Choice = "deny"
    tfserving_images: tuple[str, ...] = (STOCK_TFSERVING,)
    gpu_tag_marker: str = GPU_MARKER
    cache_ttl_seconds: float = 60.0
    negative_cache_ttl_seconds: float = 10.0
    aws_region: str = "us-east-1"
    max_body_bytes: int = MAX_BODY_BYTES
    default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Seconds kept back from the API server's deadline for our own work and the response.
    deadline_margin_seconds: float = 0.5
    webhook_name: str = DEFAULT_WEBHOOK_NAME
    # A shared S3/ConfigMap check runs this long at least, whatever the deadline of the request that
    # started it (its result is cached for the requests that could wait).
    check_budget_seconds: float = 8.0
    # PEM file of the CA that signs the API server's client certificate: when set, /validate answers only
    # callers that presented a certificate it signed (the TLS layer verifies it).
    client_ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookConfig:
        try:
            allowed = AllowList.parse(_csv(env.get(WebhookEnv.ALLOWED_S3_ENDPOINTS, "")))
        except EndpointError as exc:
            raise ConfigError(f"WEBHOOK_ALLOWED_S3_ENDPOINTS: {exc}") from None
        default = None
        if env.get(WebhookEnv.DEFAULT_S3_ENDPOINT, "").strip():
            try:
                default = normalize(env[WebhookEnv.DEFAULT_S3_ENDPOINT])
            except EndpointError as exc:
                raise ConfigError(f"WEBHOOK_DEFAULT_S3_ENDPOINT: {exc}") from None
            if default not in allowed.endpoints:
                raise ConfigError(
                    f"WEBHOOK_DEFAULT_S3_ENDPOINT {default.url} is not in WEBHOOK_ALLOWED_S3_ENDPOINTS"
                )
        images = tuple(_csv(env.get(WebhookEnv.TFSERVING_IMAGES, ""))) or (STOCK_TFSERVING,)
        marker = env.get(WebhookEnv.GPU_TAG_MARKER, GPU_MARKER).strip()
        if not marker:
            raise ConfigError("WEBHOOK_GPU_TAG_MARKER must not be empty")
        positive = _seconds(env, WebhookEnv.CACHE_TTL_SECONDS, 60.0)
        negative = _seconds(env, WebhookEnv.NEGATIVE_CACHE_TTL_SECONDS, 10.0)
        return cls(
            allowed_s3_endpoints=allowed,
            default_s3_endpoint=default,
            on_unverifiable=_choice(env, WebhookEnv.ON_UNVERIFIABLE),
            on_unresolved=_choice(env, WebhookEnv.ON_UNRESOLVED),
            on_unknown_variant=_choice(env, WebhookEnv.ON_UNKNOWN_VARIANT),
            tfserving_images=images,
            gpu_tag_marker=marker.lower(),
            cache_ttl_seconds=positive,
            negative_cache_ttl_seconds=min(negative, positive),
            aws_region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1").strip(),
            webhook_name=(env.get(WebhookEnv.NAME) or DEFAULT_WEBHOOK_NAME).strip(),
            check_budget_seconds=_seconds(env, WebhookEnv.CHECK_BUDGET_SECONDS, 8.0),
            client_ca_file=(env.get(WebhookEnv.CLIENT_CA_FILE) or "").strip() or None,
        )


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _choice(env: Mapping[str, str], name: str) -> Choice:
    value = env.get(name, "deny").strip().lower() or "deny"
    if value not in ("deny", "warn"):
        raise ConfigError(f"{name} must be 'deny' or 'warn', not {value!r}")
    return value  # type: ignore[return-value]


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {text!r}") from None
    if not 0 <= value <= 86400:
        raise ConfigError(f"{name} must be between 0 and 86400, not {text!r}")
    return value
