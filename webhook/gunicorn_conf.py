"""The gunicorn configuration the webhook is served with (measurements in docs/webhook.md).

- Worker class ThreadWorker (below): gthread, except that a TLS connection that finished its handshake but
  sends no request goes back to the poller instead of pinning a thread. With stock gthread such silent
  connections (Go's http.Transport keeps spare ones it dialed during a burst) hold a thread each until the
  client's 90 s idle timeout, and once workers x threads of them exist every request stalls (measured:
  2 x 4 stalled with 4 idle TLS connections; 1 x 64 hung at 70).
- ONE worker process, 64 threads: one process keeps the check cache and single-flight in one place, so 50
  identical concurrent admissions make one S3 check (a second worker would make its own); availability
  comes from replicas.
- keepalive 120 s, above Go's 90 s idle timeout, so the server never closes a connection the API server is
  about to reuse (a POST on a just-closed connection is not retried by Go and fails the admission).
"""

from __future__ import annotations

import os
import ssl

from gunicorn.workers import gthread

from webhook.tls import gunicorn_ssl_context

# After the TLS handshake, how long a thread waits for the request before handing the connection back to
# the poller. Clients send the request right after the handshake; connections that stay silent are the
# ones that would otherwise pin a thread until the client's idle timeout.
REQUEST_AFTER_HANDSHAKE_SECONDS = 0.05
_DEFER = getattr(gthread, "_DEFER", None)


class ThreadWorker(gthread.ThreadWorker):
    """gthread, except that a TLS connection that completed its handshake but sends no request waits in the
    poller instead of in a worker thread (gunicorn 27 only waits for the first bytes, i.e. the ClientHello,
    then blocks the thread reading the request)."""

    def handle(self, conn):
        if _DEFER is not None and self.cfg.is_ssl and not conn.initialized and not conn.data_ready:
            if not conn.wait_for_data(gthread.DEFAULT_WORKER_DATA_TIMEOUT):
                return _DEFER
            try:
                conn.sock.setblocking(True)
                conn.init()  # the handshake
            except (OSError, ValueError):
                return False
            if not conn.is_http2 and not _request_started(conn):
                conn.data_ready = False  # it was set by the ClientHello; now wait for the request itself
                if not conn.wait_for_data(REQUEST_AFTER_HANDSHAKE_SECONDS):
                    return _DEFER
            conn.data_ready = True
        return super().handle(conn)


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


WORKER_CLASS = "webhook.gunicorn_conf.ThreadWorker" if _DEFER is not None else "gthread"
WORKERS = 1
THREADS = 64
KEEPALIVE_SECONDS = 120
WORKER_CONNECTIONS = 1000


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
) -> dict:
    settings = {
        "bind": [bind],
        "worker_class": worker_class,
        "workers": workers,
        "threads": threads,
        "keepalive": keepalive,
        "worker_connections": WORKER_CONNECTIONS,
        "timeout": 30,
        "graceful_timeout": 10,
        "max_requests": 0,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "loglevel": loglevel,
        "errorlog": "-",
        "accesslog": accesslog,
        "proc_name": "tfs-webhook",
        # The read-only root filesystem has an emptyDir at /tmp; gunicorn's heartbeat files go there.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "forwarded_allow_ips": "",
        "control_socket_disable": True,  # gunicorn 24+ would create ~/.gunicorn/ (read-only root FS)
    }
    if certfile:
        settings.update(certfile=certfile, keyfile=keyfile, ssl_context=gunicorn_ssl_context)
    return {key: value for key, value in settings.items() if value is not None}
