"""Server TLS: TLS 1.2 minimum, strong ciphers, certificate/key files re-read when they change, an optional
client CA, and sockets whose reads and writes have deadlines.

cert-manager rotates the Secret behind the mounted files; gunicorn asks for an SSL context for every new
connection (its `ssl_context` hook), so `ReloadingContext.get()` checks the files' identity (inode, size,
mtime) and builds a new context when they changed. A half-written pair fails to load: the old context stays
in use until the pair is consistent again.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time

from webhook.limits import REQUEST_READ_SECONDS, RESPONSE_WRITE_SECONDS

log = logging.getLogger("webhook.tls")
CLOSING_READ_SECONDS = 0.05
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!DSS"


class _Deadlines:
    """Reads of one request share one deadline, armed by its first blocking read (REQUEST_READ_SECONDS:
    headers and body, as Go's ReadHeaderTimeout); the response's first write disarms it and each write gets
    RESPONSE_WRITE_SECONDS; `new_request()` disarms it too (the worker calls it when it hands a request to
    the parser). A client trickling bytes keeps a thread at most REQUEST_READ_SECONDS, not forever.
    Non-blocking reads are left alone. Once the connection is half-closed, a read waits at most
    CLOSING_READ_SECONDS: gunicorn drains a closing connection in its poller thread."""

    _read_deadline: float | None = None
    _closing = False

    def _before_read(self) -> None:
        current = self.gettimeout()
        if current == 0.0:
            return
        if self._closing:
            # gunicorn drains a half-closed connection in its poller thread (up to 2 s): keep that short
            super().settimeout(min(current or CLOSING_READ_SECONDS, CLOSING_READ_SECONDS))
            return
        now = time.monotonic()
        if self._read_deadline is None:
            self._read_deadline = now + REQUEST_READ_SECONDS
        left = self._read_deadline - now
        if left <= 0:
            raise TimeoutError("the request was not read within its deadline")
        # Each settimeout costs system calls: renew it only when it is more than a second too long.
        if current is None or current > left + 1.0:
            super().settimeout(left)

    def _before_write(self) -> None:
        self._read_deadline = None
        current = self.gettimeout()
        if current != 0.0 and current != RESPONSE_WRITE_SECONDS:
            super().settimeout(RESPONSE_WRITE_SECONDS)

    def shutdown(self, how: int) -> None:
        self._closing = True
        super().shutdown(how)

    def new_request(self) -> None:
        """A request starts: its reads get a fresh deadline (armed by the first blocking read)."""
        self._read_deadline = None

    def recv(self, *args, **kwargs):
        self._before_read()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        self._before_read()
        return super().recv_into(*args, **kwargs)

    def send(self, *args, **kwargs):
        self._before_write()
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        self._before_write()
        return super().sendall(*args, **kwargs)


class GuardedSocket(_Deadlines, socket.socket):
    """A plain TCP socket with request deadlines: `GuardedSocket(fileno=sock.detach())`."""


class GuardedSSLSocket(_Deadlines, ssl.SSLSocket):
    """What our SSL contexts wrap connections in (`SSLContext.sslsocket_class`). SSLSocket.recv and
    recv_into go through read() while TLS is up: the deadline is checked there, once; after a shutdown they
    read the plain socket, and are checked themselves."""

    def read(self, *args, **kwargs):
        self._before_read()
        return super().read(*args, **kwargs)

    def recv(self, *args, **kwargs):
        if self._sslobj is None:
            self._before_read()
        return ssl.SSLSocket.recv(self, *args, **kwargs)

    def recv_into(self, *args, **kwargs):
        if self._sslobj is None:
            self._before_read()
        return ssl.SSLSocket.recv_into(self, *args, **kwargs)


def make_context(certfile: str, keyfile: str, client_ca: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS)  # TLS 1.2 suites; TLS 1.3 suites are always the strong defaults
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    if client_ca:
        # Optional at the TLS layer (the kubelet's probes present no certificate); a certificate that is
        # presented must verify, and /validate requires one (webhook.app).
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=client_ca)
    context.sslsocket_class = GuardedSSLSocket
    return context


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)  # follows the ..data symlink of a Secret volume
    return st.st_ino, st.st_size, st.st_mtime_ns


class ReloadingContext:
    def __init__(
        self, certfile: str, keyfile: str, *, check_interval: float = 1.0, client_ca: str | None = None
    ):
        self.certfile = certfile
        self.keyfile = keyfile
        self.client_ca = client_ca
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._identity = self._files()
        self._context = make_context(certfile, keyfile, client_ca)
        self._checked = time.monotonic()
        self.reloads = 0

    def get(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self.check_interval:
            return self._context
        with self._lock:
            self._checked = now
            try:
                identity = self._files()
            except OSError as exc:
                log.warning("cannot stat the TLS files (%s); keeping the current certificate", exc)
                return self._context
            if identity != self._identity:
                try:
                    self._context = make_context(self.certfile, self.keyfile, self.client_ca)
                except (OSError, ssl.SSLError) as exc:
                    log.warning(
                        "cannot load the rotated TLS files yet (%s); keeping the current certificate", exc
                    )
                    return self._context
                self._identity = identity
                self.reloads += 1
                log.info("reloaded the TLS certificate from %s", self.certfile)
            return self._context

    def _files(self) -> tuple:
        paths = (self.certfile, self.keyfile) + ((self.client_ca,) if self.client_ca else ())
        return tuple(_identity(path) for path in paths)


_contexts: dict[tuple[str, str], ReloadingContext] = {}
_contexts_lock = threading.Lock()


def gunicorn_ssl_context(conf, default_ssl_context_factory) -> ssl.SSLContext:
    """gunicorn's `ssl_context` hook: one ReloadingContext per (certfile, keyfile) in the worker."""
    key = (conf.certfile, conf.keyfile, conf.ca_certs or None)
    with _contexts_lock:
        reloading = _contexts.get(key)
        if reloading is None:
            reloading = _contexts[key] = ReloadingContext(key[0], key[1], client_ca=key[2])
    return reloading.get()
