"""The two reads a check makes (ListObjectsV2 and a ranged GetObject) sent straight through the boto3
client's own HTTP session, signed by botocore's SigV4 signer, without the rest of botocore's per-call
pipeline.

Why: on loopback a catalogue check is CPU-bound, and botocore spends about 1.4 ms of CPU per call on
parameter validation, serialisation, endpoint rules, a dozen event hooks and a model-driven XML parser
(timestamps through dateutil); these reads cost about a third of that. What a check depends on stays
botocore's: the connection pool (its size bounds the connections), TLS verification, proxies, socket
options and timeouts (the client's HTTP session), credentials (the session's provider chain, refreshed as
botocore refreshes them), the signature, and the exceptions the transport raises. An S3 error answer
becomes the ClientError botocore would raise (code and status from the error body, or from the status
alone), so callers classify both paths alike. Only for custom endpoints (RGW, SeaweedFS, MinIO: what
S3_ENDPOINT names): AWS S3 itself keeps the boto3 client, whose region redirects it may need.
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, IncompleteReadError, NoCredentialsError
from botocore.utils import percent_encode

from .trees import count

_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class UnreadableAnswer(Exception):
    """A successful status with a body that is not what the operation answers."""


class DirectReads:
    """Reads through one boto3 client's HTTP session (thread-safe, like the client)."""

    def __init__(self, client, credentials, region: str, *, anonymous: bool) -> None:
        """`credentials`: botocore Credentials (None when anonymous); `client` must have a custom
        endpoint and path-style addressing."""
        self._http = client._endpoint.http_session  # the client's own pool, TLS, proxies and timeouts
        self._endpoint = client.meta.endpoint_url.rstrip("/")
        self._credentials = credentials
        self._region = region
        self._anonymous = anonymous

    def list_objects_v2(
        self, bucket: str, prefix: str, *, delimiter: str | None, token: str | None, max_keys: int
    ) -> dict:
        """One ListObjectsV2 page in boto3's shape (CommonPrefixes, Contents with Key/Size/ETag,
        IsTruncated, NextContinuationToken). Keys are asked URL-encoded, as boto3 asks them."""
        params = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys), "encoding-type": "url"}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["continuation-token"] = token
        status, _, body = self._send(f"/{percent_encode(bucket, safe='~')}", params, {}, "ListObjectsV2")
        try:
            return _listing(ElementTree.fromstring(body))
        except (ElementTree.ParseError, ValueError) as exc:
            raise UnreadableAnswer(
                f"the server answered {status} with a body that is not a listing ({exc})"
            ) from None

    def get_range(self, bucket: str, key: str, start: int, end: int) -> tuple[int, dict, bytes]:
        """(status, headers, body) of a GET of bytes [start, end) of an object."""
        path = f"/{percent_encode(bucket, safe='~')}/{percent_encode(key, safe='/~')}"
        return self._send(path, {}, {"Range": f"bytes={start}-{end - 1}"}, "GetObject")

    def _send(self, path: str, params: dict, headers: dict, operation: str) -> tuple[int, Any, bytes]:
        request = AWSRequest("GET", self._endpoint + path, headers=headers, params=params)
        if not self._anonymous:
            if self._credentials is None:
                raise NoCredentialsError()
            S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
        count(requests=1)
        response = self._http.send(request.prepare())
        body = response.content
        length = response.headers.get("content-length")
        count(received=len(body) if length is None else int(length))
        if length is not None and int(length) != len(body):
            raise IncompleteReadError(actual_bytes=len(body), expected_bytes=int(length))
        if response.status_code >= 300:
            raise ClientError(_error(response.status_code, body), operation)
        return response.status_code, response.headers, body


def _listing(root: ElementTree.Element) -> dict:
    page: dict[str, Any] = {"IsTruncated": False}
    contents: list[dict] = []
    prefixes: list[dict] = []
    encoded = False
    for node in root:
        tag = _tag(node)
        if tag == "Contents":
            item = {_tag(child): child.text or "" for child in node if len(child) == 0}
            entry = {"Key": item.get("Key", ""), "Size": int(item.get("Size") or 0)}
            if "ETag" in item:
                entry["ETag"] = item["ETag"]
            contents.append(entry)
        elif tag == "CommonPrefixes":
            prefixes.extend({"Prefix": child.text or ""} for child in node if _tag(child) == "Prefix")
        elif tag == "IsTruncated":
            page["IsTruncated"] = (node.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            page["NextContinuationToken"] = node.text or ""
        elif tag == "EncodingType":
            encoded = (node.text or "") == "url"
    if encoded:  # as botocore decodes what it asked encoded
        for entry in contents:
            entry["Key"] = unquote_plus(entry["Key"])
        for common in prefixes:
            common["Prefix"] = unquote_plus(common["Prefix"])
    if contents:
        page["Contents"] = contents
    if prefixes:
        page["CommonPrefixes"] = prefixes
    return page


def _error(status: int, body: bytes) -> dict:
    """The ClientError response botocore builds for an S3 error answer."""
    error = {"Code": str(status), "Message": http.client.responses.get(status, "")}
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            root = None
        if root is not None and _tag(root) == "Error":
            fields = {_tag(child): child.text or "" for child in root}
            error = {"Code": fields.get("Code", ""), "Message": fields.get("Message", "")}
    return {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}


def _tag(node: ElementTree.Element) -> str:
    tag = node.tag
    return tag[len(_NAMESPACE) :] if tag.startswith(_NAMESPACE) else tag.rsplit("}", 1)[-1]
