"""The gunicorn configuration the webhook is served with (measurements and the choice in docs/webhook.md).

gunicorn's gthread worker with one process of 64 threads: one process keeps one check cache, so single-flight
works across all requests (availability comes from replicas). gthread already parks idle keep-alive
connections in its poller; what it does not do, `ThreadWorker` adds, so that no client can hold a thread
for long or starve the others:

- a new connection gets a thread only once its first bytes arrived (50 ms wait, then the poller);
- the TLS handshake runs non-blocking: a connection whose handshake is not complete waits in the poller,
  and is closed when it is still incomplete TLS_HANDSHAKE_SECONDS after the connection began;
- a TLS connection that finished its handshake but sends no request goes back to the poller (Go's
  http.Transport keeps such spare connections: with stock gthread each pinned a thread);
- a request is read whole (head, and a Content-Length body up to the cap) by non-blocking reads of what
  has arrived, each time the poller sees more, before a thread runs it, as waitress does: a client that
  trickles its request holds no thread; when more bytes come REQUEST_READ_SECONDS after its first byte and
  the request is still incomplete, the connection is closed (a silent one goes at the keep-alive sweep);
  requests buffered this way hold MAX_BUFFERED_REQUEST_BYTES in all, beyond that they are read in their
  thread (under the same deadline);
- reads the parser still makes (a chunked body) share that deadline, writes get a RESPONSE_WRITE_SECONDS
  timeout (webhook.tls sockets);
- at most MAX_CONNECTIONS_PER_CLIENT connections per client address (more are closed at once), at most
  MAX_CONNECTIONS in all (worker_connections).

keepalive 120 s, above Go's 90 s idle timeout, so the server never closes a connection the API server is
about to reuse (a POST on a just-closed connection is not retried by Go and fails the admission).

`ThreadWorker` uses gthread internals (TConn fields, the _DEFER sentinel): gunicorn is pinned to the major
version it was written against, and tests/webhook/test_tls.py and test_slow_clients.py hold it to its
promises.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import ssl
import threading
import time
import weakref

from gunicorn import glogging
from gunicorn import http as gunicorn_http
from gunicorn import sock as gunicorn_sock
from gunicorn.workers import gthread

from rulebook.names import WebhookEnv
from webhook.limits import (
    MAX_BODY_BYTES,
    MAX_BUFFERED_REQUEST_BYTES,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    REQUEST_READ_SECONDS,
    TLS_HANDSHAKE_SECONDS,
)
from webhook.tls import GuardedSocket, gunicorn_ssl_context

log = logging.getLogger("webhook.server")

# Clients send the ClientHello (or the request) right after connecting, the request right after the
# handshake, the body right after the head: a connection silent for this long waits in the poller instead of
# in a thread.
FIRST_BYTES_SECONDS = 0.05
REQUEST_AFTER_HANDSHAKE_SECONDS = 0.05
_DEFER = gthread._DEFER
MAX_HEAD_BYTES = 64 * 1024  # gunicorn's limits: a 8190-byte request line, 100 fields of 8190 bytes
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)


class ThreadWorker(gthread.ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._per_client: dict[str, int] = {}
        self._per_client_lock = threading.Lock()
        self._buffered = 0  # bytes held by requests being read whole, all connections

    def load_wsgi(self):
        super().load_wsgi()
        # Everything loaded so far (Flask, boto3, the Kubernetes client: ~10^5 objects) lives as long as the
        # worker: out of the collector's sight, a full collection takes < 1 ms instead of 100-200 ms, a
        # pause every thread would wait out.
        gc.collect()
        gc.freeze()


    def handle(self, conn):
        if not getattr(conn, "tfs_admitted", False) and not self._admit(conn):
            return False
        if not conn.initialized:
            if not conn.data_ready and not conn.wait_for_data(FIRST_BYTES_SECONDS):
                return _DEFER
            if self.cfg.is_ssl:
                step = self._handshake(conn)
                if step is not True:
                    return step
            else:
                conn.init()
            conn.data_ready = True
        buffered = self._buffer_request(conn)
        if buffered is not True:
            return buffered
        return super().handle(conn)

    # --- the whole request before a thread runs it --------------------------------------------------------

    def _buffer_request(self, conn):
        """True when the request is complete (its bytes handed to the parser), _DEFER to wait for more,
        False to close (the peer closed, or its deadline passed)."""
        if conn.is_http2 or conn.parser.unreader.buf.getvalue():
            return True  # pipelined bytes the parser already holds: let it go on
        buffer = getattr(conn, "tfs_buffer", None)
        if buffer is None:
            buffer = conn.tfs_buffer = bytearray()
        for attempt in (1, 2):
            before = len(buffer)
            closed = _read_available(conn.sock, buffer)
            self._hold(conn, len(buffer) - before)
            if self._buffered > MAX_BUFFERED_REQUEST_BYTES:
                # Over the memory budget: this one is read by its thread, under the read deadline.
                return self._hand_over(conn, buffer)
            if closed or _complete(buffer) or attempt == 2:
                break
            # The request usually follows at once (after the handshake, or the body after the head):
            # a short wait here saves a round through the poller.
            conn.data_ready = False
            if not conn.wait_for_data(REQUEST_AFTER_HANDSHAKE_SECONDS):
                break
        if buffer and getattr(conn, "tfs_first_byte", None) is None:
            conn.tfs_first_byte = time.monotonic()
        if closed and not buffer:
            return False
        if closed or _complete(buffer):
            return self._hand_over(conn, buffer)
        if buffer and time.monotonic() - conn.tfs_first_byte > REQUEST_READ_SECONDS:
            log.warning("closed a connection whose request was not read in time", extra=_peer(conn))
            return _drop(conn)
        conn.data_ready = False
        return _DEFER

    def _hand_over(self, conn, buffer: bytearray) -> bool:
        new_request = getattr(conn.sock, "new_request", None)
        if new_request is not None:
            new_request()
        conn.parser.unreader.unread(bytes(buffer))
        self._hold(conn, -len(buffer))
        conn.tfs_buffer = None
        conn.tfs_first_byte = None
        return True

    def _hold(self, conn, delta: int) -> None:
        with self._per_client_lock:
            self._buffered += delta
            conn.tfs_held[0] += delta

    # --- per-client cap ----------------------------------------------------------------------------------

    def _admit(self, conn) -> bool:
        client = conn.client[0] if isinstance(conn.client, tuple) else str(conn.client)
        with self._per_client_lock:
            count = self._per_client.get(client, 0)
            if count >= MAX_CONNECTIONS_PER_CLIENT:
                log.warning("refused a connection over the per-client cap", extra=_peer(conn))
                return _drop(conn)
            self._per_client[client] = count + 1
        conn.tfs_held = [0]  # bytes of this connection's request buffered by _buffer_request
        weakref.finalize(conn, self._release, client, conn.tfs_held)  # when gthread lets go of it
        conn.tfs_admitted = True
        conn.tfs_since = time.monotonic()
        if not self.cfg.is_ssl:
            conn.sock = GuardedSocket(fileno=conn.sock.detach())
        return True

    def _release(self, client: str, held: list[int]) -> None:
        with self._per_client_lock:
            self._buffered -= held[0]
            count = self._per_client.get(client, 1) - 1
            if count > 0:
                self._per_client[client] = count
            else:
                self._per_client.pop(client, None)

    # --- the TLS handshake, one step per readable event -------------------------------------------------

    def _handshake(self, conn):
        """True when done (conn initialized with an HTTP/1.1 parser), _DEFER to wait, False to close."""
        if time.monotonic() - conn.tfs_since > TLS_HANDSHAKE_SECONDS:
            return _drop(conn)
        try:
            if not isinstance(conn.sock, ssl.SSLSocket):
                conn.sock.setblocking(False)
                conn.sock = gunicorn_sock.ssl_wrap_socket(conn.sock, self.cfg)
            conn.sock.setblocking(False)
            conn.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            conn.data_ready = False
            return _DEFER
        except (OSError, ValueError):
            return _drop(conn)
        conn.parser = gunicorn_http.get_parser(self.cfg, conn.sock, conn.client)  # still non-blocking
        conn.initialized = True
        return True


def _read_available(sock, buffer: bytearray) -> bool:
    """Append what has arrived without blocking; True when the peer closed the connection. A socket the
    poller handed over is still non-blocking: it is left so (gthread makes it blocking next)."""
    was = sock.gettimeout()
    if was != 0.0:
        sock.setblocking(False)
    try:
        while len(buffer) <= MAX_HEAD_BYTES + MAX_BODY_BYTES:
            data = sock.recv(65536)
            if not data:
                return True
            buffer += data
            if _complete(buffer):
                break  # no further read (and no want-read exception) for the usual one-segment request
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    except OSError:
        return True
    finally:
        if was != 0.0:
            sock.settimeout(was)
    return False


def _complete(buffer: bytearray) -> bool:
    """Whether `buffer` holds a whole request head and its Content-Length body (or is past the caps, for
    the parser to refuse); a chunked body is left to the parser (under the read deadline)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return len(buffer) > MAX_HEAD_BYTES
    head = bytes(buffer[: end + 2])
    if _CHUNKED.search(head):
        return True
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return length > MAX_BODY_BYTES or len(buffer) >= end + 4 + length


def _drop(conn) -> bool:
    """Close at once (no graceful drain: it runs in the poller thread) and tell gthread so (False)."""
    with contextlib.suppress(OSError):
        conn.sock.close()
    return False


def _peer(conn) -> dict:
    return {"client": conn.client[0] if isinstance(conn.client, tuple) else str(conn.client)}


class Logger(glogging.Logger):
    """gunicorn's logger, with the access log on only when one is asked for (`accesslog`). Stock gunicorn
    counts any logconfig_dict as "access log on" and then builds every request's log atoms (~10 % of a
    request's CPU) for a logger that has no handler."""

    def _compute_access_log_enabled(self) -> bool:
        return self.cfg.accesslog is not None


WORKER_CLASS = "webhook.gunicorn_conf.ThreadWorker"
WORKERS = 1
THREADS = 64
KEEPALIVE_SECONDS = 120

LOGCONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "webhook.jsonlog.JSONFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


def options(
    bind: str,
    certfile: str | None = None,
    keyfile: str | None = None,
    *,
    threads: int = THREADS,
    workers: int = WORKERS,
    keepalive: int = KEEPALIVE_SECONDS,
    loglevel: str = "info",
    accesslog: str | None = None,
    worker_class: str = WORKER_CLASS,
    client_ca: str | None = None,
) -> dict:
    settings = {
        "bind": [bind],
        "worker_class": worker_class,
        "workers": workers,
        "threads": threads,
        "keepalive": keepalive,
        "worker_connections": MAX_CONNECTIONS,
        "timeout": 30,
        "graceful_timeout": 10,
        "max_requests": 0,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "loglevel": loglevel,
        "errorlog": "-",
        "accesslog": accesslog,
        "logconfig_dict": LOGCONFIG,
        "logger_class": "webhook.gunicorn_conf.Logger",
        "proc_name": "tfs-webhook",
        # The read-only root filesystem has an emptyDir at /tmp; gunicorn's heartbeat files go there.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "forwarded_allow_ips": "",
        "control_socket_disable": True,  # gunicorn 24+ would create ~/.gunicorn/ (read-only root FS)
    }
    if certfile:
        settings.update(
            certfile=certfile,
            keyfile=keyfile,
            ssl_context=gunicorn_ssl_context,
            do_handshake_on_connect=False,  # ThreadWorker runs it non-blocking
        )
        client_ca = client_ca or os.environ.get(WebhookEnv.CLIENT_CA_FILE) or None
        if client_ca:
            settings.update(ca_certs=client_ca)
    return {key: value for key, value in settings.items() if value is not None}
