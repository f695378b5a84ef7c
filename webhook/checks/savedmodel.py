"""savedmodel: every model the container will load is a complete SavedModel under its version policy.

Runs last (it is the only check that talks to storage). Before any S3 request the container's S3 endpoint
must be on the operator's allow-list (SSRF); the request uses the webhook's own credentials and TLS settings,
never the workload's. Results are cached (TTL; negative results shorter) and identical concurrent checks
share one S3 check.

storage.mode sync: a local base path is checked where it comes from, the S3 source of the sync containers
filling it (webhook.syncsource), with the TF Serving model's policy and the sync container's S3 endpoint.
A local path no sync container fills cannot be checked at all: denied.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rulebook.labels import LabelIssue, label_findings, labels_not_loaded
from rulebook.policy import VersionPolicy
from rulebook.s3 import ENDPOINT_VARIABLE, Endpoint, EndpointError, endpoint_text_problem, workload_endpoint
from webhook.cache import Busy, TTLCache, digest
from webhook.checks import CheckResult
from webhook.config import WebhookConfig
from webhook.extract import ServedModel, ServingContainer
from webhook.limits import (
    CHECK_CACHE_BYTES,
    MAX_CONCURRENT_CHECKS,
    MAX_PENDING_CHECKS,
    UNVERIFIABLE_TTL_SECONDS,
)
from webhook.messages import clip
from webhook.syncsource import SyncSource

NAME = "savedmodel"


@dataclass(frozen=True)
class Verified:
    """One model's storage verdict as the check needs it (built from the library's ModelReport)."""

    verdict: str  # "valid" | "invalid" | "cannot-verify"
    report: object  # savedmodel.ModelReport
    how: str  # cache: "hit" | "shared" | "miss"


class ModelVerifier:
    """A SavedModelChecker per allowed endpoint (the webhook's own credentials) behind a single-flight
    cache."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        on_check: Callable[[object], None] | None = None,
        on_lookup: Callable[[str], None] | None = None,
    ):
        self._config = config
        self._checkers: dict[Endpoint, object] = {}
        self._lock = threading.Lock()
        self.cache: TTLCache = TTLCache(
            "savedmodel",
            ttl_for=lambda report: report_ttl(report, config),
            weigh=report_size,
            max_bytes=CHECK_CACHE_BYTES,
            workers=MAX_CONCURRENT_CHECKS,
            max_pending=MAX_PENDING_CHECKS,
        )
        self._on_check = on_check or (lambda report: None)
        self._on_lookup = on_lookup or (lambda how: None)

    def _checker(self, endpoint: Endpoint):
        from savedmodel import S3Settings, SavedModelChecker

        with self._lock:
            checker = self._checkers.get(endpoint)
            if checker is None:
                # verify_ssl is always True: a workload's S3_VERIFY_SSL=0 never weakens our TLS.
                settings = S3Settings(
                    endpoint_url=endpoint.url, region=self._config.aws_region, verify_ssl=True
                )
                checker = self._checkers[endpoint] = SavedModelChecker(
                    settings, connect_timeout=1.0, read_timeout=3.0, max_attempts=2
                )
            return checker

    def verify(self, endpoint: Endpoint, base_path: str, policy: VersionPolicy, deadline: float) -> Verified:
        from savedmodel import VersionPolicy

        library_policy = VersionPolicy(kind=policy.kind, count=policy.count, versions=policy.versions)
        key = digest(endpoint.url, base_path, str(library_policy))

        def compute(flight_deadline: float):
            report = self._checker(endpoint).verify(base_path, library_policy, deadline=flight_deadline)
            self._on_check(report)
            return report

        report, how = self.cache.get_or_compute(
            key, compute, deadline=deadline, budget=self._config.check_budget_seconds
        )
        self._on_lookup(how)
        return Verified(_verdict(report), report, how)

    def clear(self) -> None:
        self.cache.clear()


def _verdict(report) -> str:
    return getattr(report.verdict, "value", str(report.verdict))


def report_ttl(report, config: WebhookConfig) -> float:
    """Valid: the TTL; invalid: the negative TTL; cannot verify: briefly for a storage failure, never when
    the check ran out of time (that says nothing about the storage)."""
    verdict = _verdict(report)
    if verdict == "valid":
        return config.cache_ttl_seconds
    if verdict == "invalid":
        return config.negative_cache_ttl_seconds
    if report.error_kind == "timed-out":
        return 0.0
    return min(config.negative_cache_ttl_seconds, UNVERIFIABLE_TTL_SECONDS)


def report_size(report) -> int:
    """An estimate of the bytes a report holds (its listings dominate)."""
    size = 512 + sum(len(name) + 64 for name in report.ignored) + 256 * len(report.problems)
    for version in report.versions:
        size += 400 + 200 * len(getattr(version, "files", ()) or ()) + 400 * len(version.reasons)
    return size


def resolve_endpoint(
    container: ServingContainer | SyncSource, config: WebhookConfig
) -> tuple[Endpoint | None, CheckResult | None]:
    """The allowed endpoint a container reads models from (TF Serving's own, or a sync container's), or the
    result that stops the check."""
    if "S3_ENDPOINT" in container.indirect_env or (container.env_from and "S3_ENDPOINT" not in container.env):
        return None, CheckResult.undecided(
            NAME,
            f'container "{container.name}" sets S3_ENDPOINT from a Secret or ConfigMap, so its storage '
            "cannot be checked; set S3_ENDPOINT as a literal env value",
            "on_unresolved",
        )
    url = workload_endpoint(container.env)
    if url is None:
        if config.default_s3_endpoint is None:
            return None, CheckResult.undecided(
                NAME,
                f'container "{container.name}" sets no S3_ENDPOINT and the webhook has no default endpoint; '
                "set S3_ENDPOINT",
                "on_unresolved",
            )
        return config.default_s3_endpoint, None
    try:
        endpoint = config.allowed_s3_endpoints.match(url)
    except EndpointError as exc:
        shown = clip(container.env.get("S3_ENDPOINT", url), 60)
        return None, CheckResult.failed(
            NAME,
            f'S3_ENDPOINT {shown} of container "{container.name}" is refused: {clip(str(exc), 90)}; use '
            f"an allowed endpoint ({config.allowed_s3_endpoints.describe(2)})",
        )
    # Allowed once normalised; but TF Serving uses the text as written, so it must be that endpoint exactly.
    raw = container.env.get(ENDPOINT_VARIABLE, "")
    problem = endpoint_text_problem(raw)
    if problem:
        return None, CheckResult.failed(
            NAME,
            f'S3_ENDPOINT {clip(repr(raw[:80]), 64)} of container "{container.name}" {problem}; TF '
            f"Serving uses the value as written: write {endpoint.url.partition('//')[2]}",
        )
    return endpoint, None


def check(
    container: ServingContainer, config: WebhookConfig, verifier: ModelVerifier, deadline: float
) -> CheckResult:
    if container.unresolved:
        return CheckResult.undecided(
            NAME,
            f'cannot tell what container "{container.name}" loads: {container.unresolved[0]}',
            "on_unresolved",
            transient=container.transient,
        )
    targets, stop = _targets(container, config)
    if stop is not None:
        return stop
    warnings: list[str] = []
    requests = 0
    for model, endpoint in targets:
        label_problem = _label_problem(model)
        if label_problem:
            return CheckResult.failed(NAME, label_problem)
        if time.monotonic() >= deadline:
            return _cannot_verify(model, "out of time before the check started", transient=True)
        try:
            verified = verifier.verify(endpoint, model.base_path, model.policy, deadline)
        except ValueError as exc:  # a path no S3 request could be made for (the library's only exception)
            return CheckResult.failed(
                NAME,
                f'model "{model.name}" has base_path {clip(model.base_path, 90)}: '
                f"{clip(str(exc), 100)}; use s3://BUCKET/PREFIX",
            )
        except Busy:
            return _cannot_verify(model, "too many checks are running; retry", transient=True)
        except TimeoutError:
            return _cannot_verify(model, "the check did not finish before this request's deadline", True)
        report = verified.report
        if verified.how == "miss":
            requests += report.stats.requests
        if verified.verdict == "cannot-verify":
            timed_out = report.error_kind == "timed-out"
            return _cannot_verify(model, report.error or "storage did not answer", transient=timed_out)
        if verified.verdict == "invalid":
            return CheckResult.failed(NAME, invalid_message(model, report))
        label_problem = _label_loaded_problem(model, report)
        if label_problem:
            return CheckResult.failed(NAME, label_problem)
        warnings.extend(model_warnings(model, report))
    result = CheckResult.passed(NAME, tuple(warnings))
    return CheckResult(result.check, result.outcome, warnings=result.warnings, s3_requests=requests)


def _targets(
    container: ServingContainer, config: WebhookConfig
) -> tuple[list[tuple[ServedModel, Endpoint]], CheckResult | None]:
    """What to verify where: each s3:// model at the container's endpoint, each synced local model at its
    sync containers' S3 source and endpoint (under the model's name and policy); or the result that stops
    the check."""
    targets: list[tuple[ServedModel, Endpoint]] = []
    if any(model.base_path.startswith("s3://") for model in container.models):
        endpoint, stop = resolve_endpoint(container, config)
        if stop is not None:
            return [], stop
        targets += [(m, endpoint) for m in container.models if m.base_path.startswith("s3://")]
    for model in container.models:
        if model.base_path.startswith("s3://"):
            continue
        sources = container.synced.get(model.base_path, ())
        problem = _sync_problem(model, sources)
        if problem:
            return [], CheckResult.failed(NAME, problem)
        for source in sources:
            endpoint, stop = resolve_endpoint(source, config)
            if stop is not None:
                return [], stop
            target = (dataclasses.replace(model, base_path=source.spec.source), endpoint)
            if target not in targets:
                targets.append(target)
    return targets, None


def _sync_problem(model: ServedModel, sources: tuple[SyncSource, ...]) -> str:
    path = clip(model.base_path, 80)
    if not sources:
        return (
            f'model "{model.name}" is at {path}, which no tfs-gitops sync container fills (the same '
            "volume and directory), so nothing checks what lands there; fill it with sync containers "
            "(storage.mode sync) or serve an s3:// path"
        )
    for source in sources:
        if source.spec.policy != model.policy:
            return (
                f'model "{model.name}" has policy {model.policy} in its model config but container '
                f'"{source.name}" syncs {path} with --policy {source.spec.policy}; make them the same, '
                "or TF Serving loads versions nobody checked"
            )
    if len({source.spec.source for source in sources}) > 1:
        names = ", ".join(f'"{source.name}"' for source in sources)
        return (
            f'model "{model.name}" at {path} is filled from different S3 paths by containers {names}; '
            "sync it from one source"
        )
    return ""


def _cannot_verify(model: ServedModel, why: str, transient: bool = False) -> CheckResult:
    return CheckResult.undecided(
        NAME,
        f'cannot verify model "{model.name}" at {clip(model.base_path, 90)}: {clip(why, 100)}',
        "on_unverifiable",
        transient=transient,
    )


def _policy_text(policy: VersionPolicy) -> str:
    return str(policy)


def invalid_message(model: ServedModel, report) -> str:
    path = model.base_path.rstrip("/")
    bad = [v for v in report.selected if not v.valid]
    if bad:
        version = bad[0]
        reason = clip(version.reasons[0] if version.reasons else "it is not a complete SavedModel", 110)
        good = [v for v in report.selected if v.valid]
        pin = f"pin version {good[0].number}" if good else "pin a complete version"
        return (
            f'model "{model.name}" version {version.number} ({clip(path, 70)}/{version.name}) is invalid: '
            f"{reason}; finish the upload or {pin} (model_version_policy specific)"
        )
    problem = clip(report.problems[0] if report.problems else "no loadable version", 120)
    return (
        f'model "{model.name}" at {clip(path, 80)} (policy {_policy_text(model.policy)}): {problem}; '
        "upload a complete version or fix the version policy"
    )


def model_warnings(model: ServedModel, report) -> list[str]:
    out = []
    if report.ignored:
        names = ", ".join(report.ignored[:3]) + (" ..." if len(report.ignored) > 3 else "")
        out.append(f'{NAME}: model "{model.name}" ignores non-version entries: {names}')
    for text in getattr(report, "warnings", ())[:2]:
        out.append(f'{NAME}: model "{model.name}": {text}')
    broken = [v for v in report.versions if not v.selected and getattr(v, "checked", True) and not v.valid]
    if broken:
        numbers = ", ".join(str(v.number) for v in broken[:3])
        out.append(f'{NAME}: model "{model.name}" versions beyond the policy are broken: {numbers}')
    return out


def _label_problem(model: ServedModel) -> str:
    for finding in label_findings(model.policy, model.labels):
        if finding.issue is LabelIssue.NOT_SERVED:
            return (
                f'model "{model.name}" labels version {finding.version} as "{finding.label}" but its policy '
                f"loads only {', '.join(map(str, model.policy.versions))}; add {finding.version} to specific "
                "versions"
            )
    return ""


def _label_loaded_problem(model: ServedModel, report) -> str:
    for label, version in labels_not_loaded(model.labels, report.loaded_versions()):
        return (
            f'model "{model.name}" labels version {version} as "{label}" but that version is not loaded '
            f"(policy {_policy_text(model.policy)}); TF Serving would refuse the label"
        )
    return ""
