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
- reads of one request share a REQUEST_READ_SECONDS deadline from its first byte, writes a
  RESPONSE_WRITE_SECONDS timeout (webhook.tls sockets);
- at most MAX_CONNECTIONS_PER_CLIENT connections per client address (more are closed at once), at most
  MAX_CONNECTIONS in all (worker_connections).

keepalive 120 s, above Go's 90 s idle timeout, so the server never closes a connection the API server is
about to reuse (a POST on a just-closed connection is not retried by Go and fails the admission).

`ThreadWorker` uses gthread internals (TConn fields, the _DEFER sentinel): gunicorn is pinned to the major
version it was written against, and tests/webhook/test_tls.py and test_slow_clients.py hold it to its
promises.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
import weakref

from gunicorn import http as gunicorn_http
from gunicorn import sock as gunicorn_sock
from gunicorn.workers import gthread

from webhook.limits import MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, TLS_HANDSHAKE_SECONDS
from webhook.tls import GuardedSocket, gunicorn_ssl_context

log = logging.getLogger("webhook.server")

# Clients send the ClientHello (or the request) right after connecting, and the request right after the
# handshake: a connection silent for this long waits in the poller instead of in a thread.
FIRST_BYTES_SECONDS = 0.05
REQUEST_AFTER_HANDSHAKE_SECONDS = 0.05
_DEFER = gthread._DEFER


class ThreadWorker(gthread.ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._per_client: dict[str, int] = {}
        self._per_client_lock = threading.Lock()

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
                if not _request_started(conn):
                    conn.data_ready = False
                    if not conn.wait_for_data(REQUEST_AFTER_HANDSHAKE_SECONDS):
                        return _DEFER
            conn.data_ready = True
        return super().handle(conn)

    # --- per-client cap ----------------------------------------------------------------------------------

    def _admit(self, conn) -> bool:
        client = conn.client[0] if isinstance(conn.client, tuple) else str(conn.client)
        with self._per_client_lock:
            count = self._per_client.get(client, 0)
            if count >= MAX_CONNECTIONS_PER_CLIENT:
                log.warning("refused a connection over the per-client cap", extra={"client": client})
                return False
            self._per_client[client] = count + 1
        weakref.finalize(conn, self._release, client)  # when gthread lets go of the connection
        conn.tfs_admitted = True
        conn.tfs_since = time.monotonic()
        if not self.cfg.is_ssl:
            conn.sock = GuardedSocket(fileno=conn.sock.detach())
        return True

    def _release(self, client: str) -> None:
        with self._per_client_lock:
            count = self._per_client.get(client, 1) - 1
            if count > 0:
                self._per_client[client] = count
            else:
                self._per_client.pop(client, None)

    # --- the TLS handshake, one step per readable event -------------------------------------------------

    def _handshake(self, conn):
        """True when done (conn initialized with an HTTP/1.1 parser), _DEFER to wait, False to close."""
        if time.monotonic() - conn.tfs_since > TLS_HANDSHAKE_SECONDS:
            return False
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
            return False
        conn.sock.setblocking(True)
        conn.parser = gunicorn_http.get_parser(self.cfg, conn.sock, conn.client)
        conn.initialized = True
        return True


def _request_started(conn) -> bool:
    """Take what already arrived after the handshake. OpenSSL may have read the request together with the
    client's Finished message, so the socket no longer looks readable: hand those bytes to the parser."""
    conn.sock.setblocking(False)
    try:
        data = conn.sock.recv(65536)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    except OSError:
        return True  # let the parser meet the error and close the connection
    finally:
        conn.sock.setblocking(True)
    conn.parser.unreader.unread(data)
    return True


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
        client_ca = client_ca or os.environ.get("WEBHOOK_CLIENT_CA_FILE") or None
        if client_ca:
            settings.update(ca_certs=client_ca)
    return {key: value for key, value in settings.items() if value is not None}
