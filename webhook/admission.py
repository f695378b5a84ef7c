"""AdmissionReview (admission.k8s.io/v1) parsing and response building, and the response contract.

The contract, as the API server sees it (also in docs/webhook.md):
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

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


_UNREAD = object()
_ABSENT = msgspec.Raw(b"")


class AdmissionRequest:
    """One admission request. Its object and oldObject stay raw JSON until read: a cached decision is found
    by the raw pod spec (pod_spec_json), so the warm path never builds them."""

    __slots__ = (
        "uid", "group", "version", "kind", "operation", "namespace", "name", "dry_run",
        "object_json", "old_object_json", "_object", "_old_object",
    )  # fmt: skip
    api_version = API_VERSION

    def __init__(
        self,
        *,
        uid: str,
        group: str,
        version: str,
        kind: str,
        operation: str,
        namespace: str,
        name: str,
        object_json: msgspec.Raw,
        old_object_json: msgspec.Raw = _ABSENT,
        dry_run: bool = False,
    ):
        self.uid, self.group, self.version, self.kind = uid, group, version, kind
        self.operation, self.namespace, self.name, self.dry_run = operation, namespace, name, dry_run
        self.object_json, self.old_object_json = object_json, old_object_json
        self._object = self._old_object = _UNREAD

    @property
    def object(self) -> Any:
        if self._object is _UNREAD:
            self._object = _decode_object(self.object_json, "request.object")
        return self._object

    @property
    def old_object(self) -> Any:
        if self._old_object is _UNREAD:
            self._old_object = _decode_object(self.old_object_json, "request.oldObject")
        return self._old_object

    def pod_spec_json(self, old: bool = False) -> bytes | None:
        """spec.template.spec of the object (of oldObject when `old`) exactly as sent, or None when it is not
        a JSON object."""
        raw = self.old_object_json if old else self.object_json
        try:
            spec = _POD_SPEC.decode(raw).spec if raw else None
        except (msgspec.MsgspecError, RecursionError):
            return None
        raw = spec.template.spec if spec is not None and spec.template is not None else _ABSENT
        return bytes(raw) if _is_object(raw) else None


def _is_object(raw: msgspec.Raw) -> bool:
    return memoryview(raw)[:1] == b"{"  # a Raw holds one JSON value, without surrounding whitespace


def _decode_object(raw: msgspec.Raw, where: str) -> Any:
    """An object as Python values (None when absent). parse_review already checked the body's syntax, escapes
    and UTF-8; what only a full read finds (a number out of range, nesting past the interpreter's limit) is
    a 400 here."""
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except RecursionError:
        raise BadRequest(400, f"{where} nests deeper than the interpreter's recursion limit") from None
    except msgspec.MsgspecError as exc:
        raise BadRequest(400, f"{where} cannot be read: {str(exc)[:200]}") from None


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
        return head + msgspec.json.encode(uid) + tail


class _Request(msgspec.Struct, rename={"old_object": "oldObject", "dry_run": "dryRun"}):
    uid: Any = None
    kind: Any = None
    operation: Any = None
    namespace: Any = None
    name: Any = None
    object: msgspec.Raw = _ABSENT  # read when needed (AdmissionRequest.object); checked, not built
    old_object: msgspec.Raw = _ABSENT
    dry_run: Any = False


class _Review(msgspec.Struct, rename="camel"):
    api_version: Any = None
    kind: Any = None
    request: _Request | None = None


class _Template(msgspec.Struct):
    spec: msgspec.Raw = _ABSENT


class _DeploymentSpec(msgspec.Struct):
    template: _Template | None = None


class _Deployment(msgspec.Struct):
    spec: _DeploymentSpec | None = None


_REVIEW = msgspec.json.Decoder(_Review)
_POD_SPEC = msgspec.json.Decoder(_Deployment)


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse a request body; BadRequest(400) for anything that is not a usable AdmissionReview v1."""
    review = _decode_review(body)
    if review.api_version != API_VERSION or review.kind != "AdmissionReview":
        raise BadRequest(400, f"expected apiVersion {API_VERSION} kind AdmissionReview")
    request = review.request
    if request is None:
        raise BadRequest(400, "request is missing")
    uid = request.uid
    if not isinstance(uid, str) or not uid or len(uid) > MAX_UID_CHARS:
        raise BadRequest(400, "request.uid is missing")
    kind = request.kind
    if not isinstance(kind, dict):
        raise BadRequest(400, "request.kind is missing")
    group, version, kind_name = kind.get("group", ""), kind.get("version", ""), kind.get("kind", "")
    if not (isinstance(group, str) and isinstance(version, str) and isinstance(kind_name, str)):
        raise BadRequest(400, "request.kind is missing")
    operation = request.operation
    if not isinstance(operation, str):
        raise BadRequest(400, "request.operation is missing")
    namespace = request.namespace or ""
    name = request.name or ""
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise BadRequest(400, "request.namespace and request.name must be strings")
    if operation in ("CREATE", "UPDATE") and not _is_object(request.object):
        raise BadRequest(400, f"request.object is missing (an object is required for {operation})")
    return AdmissionRequest(
        uid=uid,
        group=group,
        version=version,
        kind=kind_name,
        operation=operation,
        namespace=namespace,
        name=name,
        object_json=request.object,
        old_object_json=request.old_object,
        dry_run=request.dry_run is True,
    )


def _decode_review(body: bytes) -> _Review:
    """The envelope read and the whole body checked (RFC 8259: UTF-8 only, no BOM, no NaN); the objects are
    skipped over as raw JSON."""
    try:
        if not body.isascii():
            body.decode("utf-8")  # the decoder does not check the bytes of the values it skips
        return _REVIEW.decode(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: not UTF-8 at byte {exc.start}") from None
    except msgspec.ValidationError as exc:
        _, found, where = str(exc).rpartition(" - at ")
        if not found:  # the top level
            raise BadRequest(400, "the body is not a JSON object") from None
        if where == "`$.request`":
            raise BadRequest(400, "request is missing") from None
        raise BadRequest(400, f"the body cannot be read: {str(exc)[:200]}") from None
    except RecursionError:
        raise BadRequest(
            400, "the body is not JSON: it nests deeper than the interpreter's recursion limit"
        ) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: {str(exc)[:200]}") from None


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
