"""A small HTTP/1.1 proxy on loopback that injects faults in front of a real S3 server (cannot-verify tests).

    with FaultProxy(s3_server.url) as proxy:
        proxy.set_fault("slowdown", match="/bucket/model/", times=2)
        ...  # point the client at proxy.url
        assert proxy.requests[0] == ("GET", "/bucket?list-type=2&...")

Faults (``kind``):

- ``None``: forward untouched.
- ``"delay"``: sleep ``seconds`` after reading the request head, then forward it.
- ``"reset"``: close the client connection abruptly (TCP RST, via SO_LINGER 0) instead of answering.
- ``"slowdown"``: answer 503 with an S3 ``SlowDown`` error body; ``"403"``: 403 ``AccessDenied``;
  ``"500"``: 500 ``InternalError``. Nothing reaches the server.

``match`` is a substring of the request target (path and query) selecting the affected requests, ``method``
(e.g. ``"POST"``) narrows them further; ``times`` is how many requests to affect (None: every matching one).

The Host header and every other request byte go upstream unchanged (SigV4 signs them), so the server checks
the client's signature as usual. ``Expect: 100-continue`` (botocore sends it for uploads) is answered by the
proxy itself and not forwarded; botocore does not sign that header. Bodies are streamed in both directions;
client connections are kept alive; each request gets its own upstream connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = (None, "delay", "reset", "slowdown", "403", "500")
_CHUNK = 64 * 1024
_MAX_HEAD = 64 * 1024
_ERRORS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "403": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "500": (500, "Internal Server Error", "InternalError",
            "We encountered an internal error. Please try again."),
}


class _Closed(Exception):
    """The peer closed the connection (cleanly, between or inside a message)."""


@dataclass
class _Fault:
    kind: str | None = None
    seconds: float = 0.0
    match: str | None = None
    times: int | None = None
    method: str | None = None


@dataclass
class _Head:
    raw: bytes
    start_line: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value.strip()
        return None

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for k, v in self.headers if k.lower() == name.lower() for t in v.split(",")}


class FaultProxy:
    """Threaded loopback HTTP/1.1 proxy in front of ``upstream_url`` (http://host:port)."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream_url!r}")
        self.upstream = (parts.hostname, parts.port)
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self._fault = _Fault()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self._accept_thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept",
                                               daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            _quiet(self._listener.shutdown, socket.SHUT_RDWR)
            _quiet(self._listener.close)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._lock:
            clients, threads = list(self._clients), list(self._threads)
        for sock in clients:
            _quiet(sock.shutdown, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``, the form S3_ENDPOINT takes."""
        return self.url.split("://", 1)[1]

    # -- faults ------------------------------------------------------------------------------------

    def set_fault(self, kind: str | None, *, seconds: float = 0.0, match: str | None = None,
                  times: int | None = None, method: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {KINDS}")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0 or None")
        with self._lock:
            self._fault = _Fault(kind, seconds, match, times, method)

    def _take_fault(self, method: str, target: str) -> _Fault | None:
        """Record the request and decide (atomically) whether a fault applies to it."""
        with self._lock:
            self.requests.append((method, target))
            fault = self._fault
            if fault.kind is None or (fault.match is not None and fault.match not in target):
                return None
            if fault.method is not None and fault.method != method:
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            return _Fault(fault.kind, fault.seconds, fault.match, None)

    # -- connections -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve_client, args=(sock,), name="faultproxy-conn",
                                      daemon=True)
            with self._lock:
                self.connections += 1
                self._clients.add(sock)
                self._threads.add(thread)
            thread.start()

    def _serve_client(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        reset = False
        try:
            while not self._stopping.is_set():
                outcome = self._serve_request(sock, reader)
                if outcome != "keep-alive":
                    reset = outcome == "reset"
                    break
        except (_Closed, OSError, ValueError):
            pass
        finally:
            _quiet(reader.close)
            if reset:
                _quiet(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            _quiet(sock.close)
            with self._lock:
                self._clients.discard(sock)
                self._threads.discard(threading.current_thread())

    def _serve_request(self, sock: socket.socket, reader) -> str:
        """Handle one request; returns "keep-alive", "close" or "reset"."""
        head = _read_head(reader, at_message_start=True)
        method, target, _version = _split_request_line(head.start_line)
        fault = self._take_fault(method, target)
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            return "close"
        if fault is not None and fault.kind == "reset":
            return "reset"
        client_close = "close" in head.tokens("connection")
        if fault is not None and fault.kind in _ERRORS:
            return self._answer_error(sock, reader, head, method, target, fault.kind, client_close)
        return self._forward(sock, reader, head, method, client_close)

    def _answer_error(self, sock, reader, head: _Head, method: str, target: str, kind: str,
                      client_close: bool) -> str:
        status, reason, code, message = _ERRORS[kind]
        expects = "100-continue" in head.tokens("expect")
        # Without Expect the body is already on its way: drain it to keep the connection usable. With Expect
        # the client waits for our verdict and sends no body, so answer and close.
        close = client_close or expects
        if not expects:
            for _ in _body_chunks(reader, head, is_request=True):
                pass
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{_xml_escape(target.split('?', 1)[0])}</Resource>"
            "<RequestId>faultproxy</RequestId></Error>"
        ).encode()
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/xml",
            "x-amz-request-id: faultproxy",
            f"Content-Length: {0 if method == 'HEAD' else len(body)}",
        ]
        if close:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body))
        return "close" if close else "keep-alive"

    def _forward(self, sock, reader, head: _Head, method: str, client_close: bool) -> str:
        expects = "100-continue" in head.tokens("expect")
        raw_head = _without_header(head, "expect") if expects else head.raw
        with socket.create_connection(self.upstream, timeout=None) as upstream:
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(upstream)
            try:
                if expects:
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                upstream.sendall(raw_head)
                for chunk in _body_chunks(reader, head, is_request=True):
                    upstream.sendall(chunk)
                with upstream.makefile("rb") as up_reader:
                    response = _read_head(up_reader, at_message_start=False)
                    while _status(response) in range(100, 200):
                        sock.sendall(response.raw)
                        response = _read_head(up_reader, at_message_start=False)
                    sock.sendall(response.raw)
                    delimited = True
                    for chunk in _body_chunks(up_reader, response, is_request=False, method=method):
                        if chunk is _UNTIL_CLOSE:
                            delimited = False
                            continue
                        sock.sendall(chunk)
            finally:
                with self._lock:
                    self._clients.discard(upstream)
        if client_close or not delimited or "close" in response.tokens("connection"):
            return "close"
        return "keep-alive"


_UNTIL_CLOSE = object()  # yielded before a body that ends when the server closes the connection


def _read_head(reader, *, at_message_start: bool) -> _Head:
    lines: list[bytes] = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            if at_message_start and not lines:
                raise _Closed()
            raise _Closed("connection closed inside a message head")
        size += len(line)
        if size > _MAX_HEAD:
            raise ValueError("message head too large")
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerate stray CRLF between messages (RFC 9112 2.2)
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
    text = [line.decode("latin-1").rstrip("\r\n") for line in lines[:-1]]
    headers = []
    for line in text[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return _Head(raw=b"".join(lines), start_line=text[0], headers=headers)


def _split_request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise ValueError(f"malformed request line {line!r}")
    return parts[0], parts[1], parts[2]


def _status(head: _Head) -> int:
    return int(head.start_line.split(" ", 2)[1])


def _body_chunks(reader, head: _Head, *, is_request: bool, method: str = ""):
    """Yield the raw bytes of a message body as framed on the wire (RFC 9112 6.3)."""
    if not is_request and (method == "HEAD" or _status(head) in (204, 304) or _status(head) < 200):
        return
    if "chunked" in head.tokens("transfer-encoding"):
        yield from _chunked(reader)
        return
    length = head.get("content-length")
    if length is not None:
        yield from _fixed(reader, int(length))
        return
    if is_request:
        return
    yield _UNTIL_CLOSE
    while chunk := reader.read1(_CHUNK):
        yield chunk


def _fixed(reader, remaining: int):
    while remaining > 0:
        chunk = reader.read1(min(remaining, _CHUNK))
        if not chunk:
            raise _Closed("connection closed inside a body")
        remaining -= len(chunk)
        yield chunk


def _chunked(reader):
    while True:
        size_line = reader.readline(_MAX_HEAD)
        if not size_line:
            raise _Closed("connection closed inside a chunked body")
        yield size_line
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the final CRLF
                line = reader.readline(_MAX_HEAD)
                if not line:
                    raise _Closed("connection closed inside chunked trailers")
                yield line
                if line in (b"\r\n", b"\n"):
                    return
        yield from _fixed(reader, size + 2)  # data and its CRLF


def _without_header(head: _Head, name: str) -> bytes:
    kept = [line for line in head.raw.split(b"\r\n")
            if not line.lower().startswith(name.encode() + b":")]
    return b"\r\n".join(kept)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quiet(func, *args) -> None:
    with contextlib.suppress(OSError):
        func(*args)

