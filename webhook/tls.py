"""Server TLS: TLS 1.2 minimum, strong ciphers, and certificate/key files re-read when they change.

cert-manager rotates the Secret behind the mounted files; gunicorn asks for an SSL context for every new
connection (its `ssl_context` hook), so `ReloadingContext.get()` checks the files' identity (inode, size,
mtime) and builds a new context when they changed. A half-written pair fails to load: the old context stays
in use until the pair is consistent again.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time

log = logging.getLogger("webhook.tls")
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!DSS"


def make_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS)  # TLS 1.2 suites; TLS 1.3 suites are always the strong defaults
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    return context


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)  # follows the ..data symlink of a Secret volume
    return st.st_ino, st.st_size, st.st_mtime_ns


class ReloadingContext:
    def __init__(self, certfile: str, keyfile: str, *, check_interval: float = 1.0):
        self.certfile = certfile
        self.keyfile = keyfile
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._identity = (_identity(certfile), _identity(keyfile))
        self._context = make_context(certfile, keyfile)
        self._checked = time.monotonic()
        self.reloads = 0

    def get(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self.check_interval:
            return self._context
        with self._lock:
            self._checked = now
            try:
                identity = (_identity(self.certfile), _identity(self.keyfile))
            except OSError as exc:
                log.warning("cannot stat the TLS files (%s); keeping the current certificate", exc)
                return self._context
            if identity != self._identity:
                try:
                    self._context = make_context(self.certfile, self.keyfile)
                except (OSError, ssl.SSLError) as exc:
                    log.warning(
                        "cannot load the rotated TLS files yet (%s); keeping the current certificate", exc
                    )
                    return self._context
                self._identity = identity
                self.reloads += 1
                log.info("reloaded the TLS certificate from %s", self.certfile)
            return self._context


_contexts: dict[tuple[str, str], ReloadingContext] = {}
_contexts_lock = threading.Lock()


def gunicorn_ssl_context(conf, default_ssl_context_factory) -> ssl.SSLContext:
    """gunicorn's `ssl_context` hook: one ReloadingContext per (certfile, keyfile) in the worker."""
    key = (conf.certfile, conf.keyfile)
    with _contexts_lock:
        reloading = _contexts.get(key)
        if reloading is None:
            reloading = _contexts[key] = ReloadingContext(*key)
    return reloading.get()
