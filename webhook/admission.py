"""AdmissionReview (admission.k8s.io/v1) parsing and response building, and the response contract.

The contract, as the API server sees it (also in docs/webhook.md):
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from webhook.limits import MAX_UID_CHARS

API_VERSION = "admission.k8s.io/v1"

# (situation, HTTP status, what the body holds). The API server applies the failurePolicy to every non-200.
RESPONSE_CONTRACT: tuple[tuple[str, int, str], ...] = (
    ("allowed", 200, "AdmissionReview, response.allowed=true, uid echoed; warnings for non-fatal findings"),
    (
        "allowed with warning (cannot verify/resolve and the setting is warn)",
        200,
        "allowed=true, a warning (<=120 chars) and an auditAnnotation with the full reason",
    ),
    (
        "denied (a check failed)",
        200,
        "allowed=false, status.code 403, status.message: one line naming check, model, path, version, fix",
    ),
    (
        "denied (cannot verify/resolve and the setting is deny)",
        200,
        "allowed=false, status.code 503 (storage) or 422 (unresolvable), status.message says why",
    ),
    (
        "not a Deployment / not CREATE or UPDATE / no TF Serving container",
        200,
        "allowed=true, no warnings (matchConditions normally keep these away)",
    ),
    (
        "internal error (a bug in a check)",
        200,
        "as 'cannot verify': deny with status.code 500 or allow with a warning, per WEBHOOK_ON_UNVERIFIABLE",
    ),
    (
        "a Deployment past a bound (expansion, counts, lengths: webhook.limits) or with a field of the "
        "wrong type",
        200,
        "allowed=false, status.code 403, status.message names the container and field",
    ),
    (
        "malformed request (not JSON, not an admission.k8s.io/v1 AdmissionReview, no request.uid, no "
        "request.object on CREATE/UPDATE)",
        400,
        'JSON {"error": "..."}',
    ),
    (
        "WEBHOOK_CLIENT_CA_FILE is set and the caller presented no client certificate",
        403,
        'JSON {"error": "..."}',
    ),
    ("body over the cap (4 MiB)", 413, 'JSON {"error": "..."}'),
    (
        "Content-Type is not application/json, or its charset is not UTF-8",
        415,
        'JSON {"error": "..."}',
    ),
    ("method other than POST on /validate", 405, 'JSON {"error": "..."}'),
)


class BadRequest(ValueError):
    """The body is not an AdmissionReview we can decide on (HTTP status and a one-line reason)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class AdmissionRequest(NamedTuple):  # a tuple: built in a third of a frozen dataclass's time, every request
    api_version: str
    uid: str
    group: str
    version: str
    kind: str
    operation: str
    namespace: str
    name: str
    object: Any
    old_object: Any
    dry_run: bool


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    code: int = 200
    warnings: tuple[str, ...] = ()
    audit: dict[str, str] = field(default_factory=dict)
    verdict: str = "allowed"  # for metrics: allowed | warned | denied | skipped | error
    check: str = "none"
    # False when the verdict reflects this request's circumstances (out of time, busy), not the Deployment
    # and its storage: such a decision is never cached for other callers.
    cacheable: bool = field(default=True, compare=False)

    @functools.cached_property
    def _response_json(self) -> tuple[bytes, bytes]:
        """review_response(uid, self) as compact JSON, split around the uid: made once per decision (a
        cached decision answers many requests), so an answer costs one string escape of its uid."""
        marker = "\x00"
        text = json.dumps(review_response(marker, self), separators=(",", ":"))
        head, _, tail = text.partition(json.dumps(marker))  # the uid is the first value that varies
        return head.encode(), tail.encode()

    def response_body(self, uid: str) -> bytes:
        """The AdmissionReview answering `uid` with this decision (review_response, compact JSON)."""
        head, tail = self._response_json
        return head + orjson.dumps(uid) + tail


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse a request body; BadRequest(400) for anything that is not a usable AdmissionReview v1."""
    try:
        review = orjson.loads(body)  # RFC 8259: UTF-8 only, nesting depth at most 1,024
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(review, dict):
        raise BadRequest(400, "the body is not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise BadRequest(400, f"expected apiVersion {API_VERSION} kind AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadRequest(400, "request is missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > MAX_UID_CHARS:
        raise BadRequest(400, "request.uid is missing")
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise BadRequest(400, "request.kind is missing")
    group, version, kind_name = kind.get("group", ""), kind.get("version", ""), kind.get("kind", "")
    if not (isinstance(group, str) and isinstance(version, str) and isinstance(kind_name, str)):
        raise BadRequest(400, "request.kind is missing")
    operation = request.get("operation")
    if not isinstance(operation, str):
        raise BadRequest(400, "request.operation is missing")
    namespace = request.get("namespace") or ""
    name = request.get("name") or ""
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise BadRequest(400, "request.namespace and request.name must be strings")
    obj = request.get("object")
    if operation in ("CREATE", "UPDATE") and not isinstance(obj, dict):
        raise BadRequest(400, f"request.object is missing (an object is required for {operation})")
    return AdmissionRequest(
        api_version=API_VERSION,
        uid=uid,
        group=group,
        version=version,
        kind=kind_name,
        operation=operation,
        namespace=namespace,
        name=name,
        object=obj,
        old_object=request.get("oldObject"),
        dry_run=request.get("dryRun", False) is True,
    )


def review_response(uid: str, decision: Decision) -> dict:
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        # No `reason`: kubectl then prints "Error from server: ..." followed by the API server's message.
        response["status"] = {"code": decision.code, "message": decision.message}
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if decision.audit:
        response["auditAnnotations"] = dict(decision.audit)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def parse_timeout(text: str | None, default: float) -> float:
    """The API server's `?timeout=10s` (a Go duration); the default when absent or unreadable; max 30 s."""
    if not text:
        return default
    match = _DURATION.match(text.strip())
    if match is None:
        return default
    value = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    return min(max(value, 0.1), 30.0)
