"""From an AdmissionRequest to a Decision: extract, run the checks (cheap local ones first), apply the
configuration."""

from __future__ import annotations

import time
from dataclasses import dataclass

from webhook import syncsource
from webhook.admission import AdmissionRequest, Decision
from webhook.cache import TTLCache, digest
from webhook.checks import CheckResult, Outcome, gpu_image, s3_support, savedmodel
from webhook.config import WebhookConfig
from webhook.extract import (
    ConfigMapReader,
    InvalidModelConfig,
    Malformed,
    OutOfTime,
    TooLarge,
    serving_containers,
    serving_fields,
)
from webhook.limits import DECISION_CACHE_BYTES
from webhook.messages import clip, one_line, warning

_UNDECIDED_CODES = {"on_unverifiable": 503, "on_unresolved": 422, "on_unknown_variant": 422}
_AUDIT_KEYS = {
    "on_unverifiable": "unverified",
    "on_unresolved": "unresolved",
    "on_unknown_variant": "unresolved",
}


@dataclass
class Services:
    config: WebhookConfig
    verifier: savedmodel.ModelVerifier
    read_configmap: ConfigMapReader | None
    # Whole decisions by a digest of (namespace, pod spec, UPDATE-unchanged): the warm path. Its TTLs
    # are the check cache's, so it is never staler than the S3 and ConfigMap results it was made from. The
    # checks below it do the single-flight; a decision is stored when made, if `cacheable`.
    decisions: TTLCache | None = None


def decide(request: AdmissionRequest, services: Services, deadline: float) -> Decision:
    if request.operation not in ("CREATE", "UPDATE"):
        return Decision(True, verdict="skipped")
    if (request.group, request.kind) != ("apps", "Deployment"):
        return Decision(True, verdict="skipped")
    unchanged = _same_serving(request, services.config)  # once: the key and the checks both depend on it
    key = _decision_key(request, unchanged) if services.decisions is not None else None
    if key is not None:
        cached = services.decisions.get(key)
        if cached is not None:
            return cached
    decision = _decide(request, services, deadline, unchanged)
    if key is not None and decision.cacheable:
        services.decisions.put(key, decision)
    return decision


def decision_cache(config: WebhookConfig) -> TTLCache:
    return TTLCache(
        "decisions",
        ttl_for=lambda decision: decision_ttl(decision, config),
        weigh=decision_size,
        max_bytes=DECISION_CACHE_BYTES,
    )


def decision_ttl(decision: Decision, config: WebhookConfig) -> float:
    if not decision.cacheable:
        return 0.0
    if decision.verdict in ("allowed", "skipped"):
        return config.cache_ttl_seconds
    return config.negative_cache_ttl_seconds


def decision_size(decision: Decision) -> int:
    return (
        300
        + 2 * len(decision.message)
        + sum(2 * len(w) + 64 for w in decision.warnings)
        + sum(2 * (len(k) + len(v)) + 64 for k, v in decision.audit.items())
    )


def _decision_key(request: AdmissionRequest, unchanged: bool) -> bytes | None:
    """The digest of everything a verdict is made from: the namespace (its ConfigMaps), the whole pod spec
    (a superset of the serving and sync containers and volumes, so no input can be left out of the key) and,
    for UPDATE, whether the serving fields are unchanged. The spec is digested as sent (raw JSON): on a
    CREATE no object is built before a cache hit; the same spec sent with other spacing or key order is a
    miss, never a wrong hit (the API server serialises a Deployment the same way every time)."""
    spec = request.pod_spec_json()
    if spec is None:
        return None
    namespace = request.namespace or _metadata_namespace(request.object) or "default"
    return digest(namespace, unchanged, spec)


def _decide(request: AdmissionRequest, services: Services, deadline: float, unchanged: bool) -> Decision:
    config = services.config
    namespace = request.namespace or _metadata_namespace(request.object) or "default"
    try:
        found = serving_containers(
            request.object, namespace, config.tfserving_images, services.read_configmap, deadline
        )
    except TooLarge as exc:
        return _deny(CheckResult.failed("tfserving-webhook", f"the Deployment is refused: {exc}"))
    except Malformed as exc:
        return _deny(CheckResult.failed("tfserving-webhook", f"the Deployment is malformed: {exc}"))
    except OutOfTime as exc:
        result = CheckResult.undecided("tfserving-webhook", str(exc), "on_unverifiable", transient=True)
        return _stop([result], config) or _allow([result])
    except InvalidModelConfig as exc:
        return _deny(
            CheckResult.failed(
                savedmodel.NAME,
                f"{exc.origin} (--model_config_file) is not a valid ModelServerConfig: "
                f"{clip(exc.reason, 120)}; TF Serving would not start",
            )
        )
    if not found:
        return Decision(True, verdict="skipped")
    try:
        sources = syncsource.sync_sources(request.object)
    except syncsource.InvalidSyncLine as exc:
        return _deny(CheckResult.failed(savedmodel.NAME, f"{clip(str(exc), 240)}"))
    except TooLarge as exc:
        return _deny(CheckResult.failed("tfserving-webhook", f"the Deployment is refused: {exc}"))
    except Malformed as exc:
        return _deny(CheckResult.failed("tfserving-webhook", f"the Deployment is malformed: {exc}"))
    found = [syncsource.attach(container, request.object, sources) for container in found]

    results: list[CheckResult] = []
    for container in found:
        results.append(gpu_image.check(container, config.gpu_tag_marker))
        results.append(s3_support.check(container))
    stop = _stop(results, config)
    if stop is not None:
        return stop

    if not unchanged:
        for container in found:
            results.append(savedmodel.check(container, config, services.verifier, deadline))
            stop = _stop(results, config)
            if stop is not None:
                return stop
    return _allow(results)


def _metadata_namespace(obj: object) -> str:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        namespace = obj["metadata"].get("namespace")
        return namespace if isinstance(namespace, str) else ""
    return ""


def _verdict_fields(obj: object, config: WebhookConfig) -> object:
    """The TF Serving containers, the volumes and the sync containers: what the verdict depends on."""
    serving = serving_fields(obj, config.tfserving_images)
    synced = syncsource.sync_fields(obj)
    return None if serving is None or synced is None else [serving, synced]


def _same_serving(request: AdmissionRequest, config: WebhookConfig) -> bool:
    """Whether an UPDATE leaves every field a verdict is made from as it was. A pod spec sent byte for byte
    as before (a scale, a relabel) is the same without building either object."""
    if request.operation != "UPDATE":
        return False
    old_spec = request.pod_spec_json(old=True)
    if old_spec is None:
        return False
    if old_spec == request.pod_spec_json():
        return True
    old = _verdict_fields(request.old_object, config)
    new = _verdict_fields(request.object, config)
    return old is not None and old == new


def _stop(results: list[CheckResult], config: WebhookConfig) -> Decision | None:
    """The denial due now: a failed check, or an undecided one whose setting says deny."""
    for result in results:
        if result.outcome is Outcome.FAIL:
            return _deny(result)
    for result in results:
        if result.outcome is Outcome.UNDECIDED and getattr(config, result.choice) == "deny":
            return _deny(result, code=_UNDECIDED_CODES.get(result.choice, 422))
    return None


def _deny(result: CheckResult, code: int = 403) -> Decision:
    return Decision(
        False,
        message=result.message,
        code=code,
        verdict="denied",
        check=result.check,
        cacheable=not result.transient,
    )


def _allow(results: list[CheckResult]) -> Decision:
    warnings: list[str] = []
    audit: dict[str, str] = {}
    undecided = [r for r in results if r.outcome is Outcome.UNDECIDED]
    for result in undecided:
        warnings.append(warning(result.message))
        key = _AUDIT_KEYS.get(result.choice, "unresolved")
        audit.setdefault(key, one_line(result.message))
    for result in results:
        warnings.extend(result.warnings)
    verdict = "warned" if undecided else "allowed"
    check = undecided[0].check if undecided else "none"
    return Decision(
        True,
        warnings=tuple(dict.fromkeys(warnings)),
        audit=audit,
        verdict=verdict,
        check=check,
        cacheable=not any(r.transient for r in undecided),
    )


def internal_error(config: WebhookConfig) -> Decision:
    message = (
        "tfserving-webhook: internal error while checking this Deployment (see the webhook log); "
        "retry, and report it if it persists"
    )
    if config.on_unverifiable == "deny":
        return Decision(False, message=message, code=500, verdict="error", check="internal", cacheable=False)
    return Decision(
        True,
        warnings=(warning(message),),
        audit={"unverified": message},
        verdict="error",
        check="internal",
        cacheable=False,
    )


def deadline_for(timeout_seconds: float, config: WebhookConfig, start: float | None = None) -> float:
    start = time.monotonic() if start is None else start
    margin = max(config.deadline_margin_seconds, timeout_seconds * 0.1)
    return start + max(timeout_seconds - margin, 0.1)
