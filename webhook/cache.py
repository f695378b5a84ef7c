"""A thread-safe TTL cache bounded by bytes, keyed by digests, with single-flight computation that no caller
can poison.

- Keys are digests of the decision inputs (`digest(...)`): 32 bytes whatever the input size.
- Each value gets its own lifetime (`ttl_for(value)`; 0 = not cached) and a size estimate (`weigh(value)`);
  the least recently used entries go when the total passes `max_bytes`, expired ones on access and on
  `sweep()` (the app calls it on a timer), so memory is returned after the TTL without any traffic.
- Concurrent callers asking for the same key while it is computed wait for that one computation (the 50
  identical admissions a rollout can fire make one S3 check). The computation runs in the cache's own
  threads under its own budget (the caller's deadline or `budget` seconds, whichever is later), and each
  caller waits only until its own deadline: a caller that runs out gets TimeoutError, and what it could not
  wait for is still computed and cached for the others. A short `?timeout=` can never leave a verdict it
  did not reach in the cache.
"""

from __future__ import annotations

import hashlib
import marshal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
ENTRY_OVERHEAD_BYTES = 200  # the key, the OrderedDict node, the tuple: counted for every entry


def digest(*parts: object) -> bytes:
    """A 32-byte key (BLAKE2b) for parts made of what JSON parses to. Equal parts give equal keys; the same
    object with its keys in another order gives another key (a miss, never a wrong hit): the API server
    serialises a Deployment the same way every time. ValueError for anything marshal cannot write."""
    return hashlib.blake2b(marshal.dumps(parts), digest_size=32).digest()


@dataclass
class CacheStats:
    hits: int = 0
    shared: int = 0
    misses: int = 0
    expired: int = 0  # entries dropped because their lifetime ended
    evicted: int = 0  # entries dropped to stay under max_bytes
    refused: int = 0  # callers told "busy" because max_pending flights were running


class Busy(TimeoutError):
    """Too many computations are running; the caller gets "cannot verify" (nothing is cached)."""


class TTLCache(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        ttl_for: Callable[[T], float],
        weigh: Callable[[T], int] = lambda value: 0,
        max_bytes: int = 8 * 1024 * 1024,
        workers: int = 16,
        max_pending: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self._ttl_for = ttl_for
        self._weigh = weigh
        self.max_bytes = max_bytes
        self._clock = clock
        self._max_pending = max_pending
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        # key -> (expires, size, value), least recently used first
        self._entries: OrderedDict[Hashable, tuple[float, int, T]] = OrderedDict()
        self._flights: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.stats = CacheStats()

    # --- lookups --------------------------------------------------------------------------------------------

    def get(self, key: Hashable) -> T | None:
        """The live value for `key` (a hit), or None (a miss)."""
        with self._lock:
            value = self._live(key)
            if value is None:
                self.stats.misses += 1
                return None
            self.stats.hits += 1
            return value[0]

    def _live(self, key: Hashable) -> tuple[T] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(key)
            self.stats.expired += 1
            return None
        self._entries.move_to_end(key)
        return (entry[2],)

    def put(self, key: Hashable, value: T) -> None:
        ttl = self._ttl_for(value)
        size = ENTRY_OVERHEAD_BYTES + max(int(self._weigh(value)), 0)
        with self._lock:
            self._drop(key)
            if ttl <= 0 or size > self.max_bytes:
                return
            self._entries[key] = (self._clock() + ttl, size, value)
            self.bytes += size
            while self.bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self.stats.evicted += 1

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[1]

    def get_or_compute(
        self, key: Hashable, compute: Callable[[float], T], *, deadline: float, budget: float = 0.0
    ) -> tuple[T, str]:
        """(value, how): how is "hit", "shared" (joined a running computation) or "miss".

        `compute(flight_deadline)` runs in the cache's threads with flight_deadline = max(deadline,
        now + budget). The caller waits until `deadline`: TimeoutError when it passes (the computation goes
        on and its result is cached), Busy when max_pending computations are running. An exception from
        `compute` reaches every waiting caller and is not cached.
        """
        with self._lock:
            live = self._live(key)
            if live is not None:
                self.stats.hits += 1
                return live[0], "hit"
            flight = self._flights.get(key)
            how = "shared" if flight is not None else "miss"
            if flight is None:
                if len(self._flights) >= self._max_pending:
                    self.stats.refused += 1
                    raise Busy(f"{len(self._flights)} checks are already running")
                flight_deadline = max(deadline, self._clock() + budget)
                flight = self._flights[key] = self._pool().submit(self._fly, key, compute, flight_deadline)
            if how == "shared":
                self.stats.shared += 1
            else:
                self.stats.misses += 1
        wait = deadline - self._clock()
        if wait <= 0 and not flight.done():
            raise TimeoutError("out of time")
        try:
            return flight.result(timeout=max(wait, 0.0)), how
        except TimeoutError:
            raise TimeoutError("the check did not finish within this request's deadline") from None

    def _fly(self, key: Hashable, compute: Callable[[float], T], deadline: float) -> T:
        try:
            value = compute(deadline)
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=f"cache-{self.name}")
        return self._executor

    # --- upkeep ---------------------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Drop every expired entry; returns how many went."""
        now = self._clock()
        with self._lock:
            expired = [key for key, entry in self._entries.items() if entry[0] <= now]
            for key in expired:
                self._drop(key)
            self.stats.expired += len(expired)
        return len(expired)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


class Sweeper:
    """One daemon thread that sweeps caches every `interval` seconds and gives freed memory back to the
    operating system (glibc keeps freed heap memory otherwise; RSS would stay at its peak)."""

    def __init__(self, caches: list[TTLCache], interval: float):
        self.caches = caches
        self.interval = max(interval, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            freed = sum(cache.sweep() for cache in self.caches)
            if freed:
                release_memory()


def release_memory() -> None:
    """glibc's malloc_trim(0): return free heap pages of every arena to the OS (no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_TRIM: list = []


def _malloc_trim():
    if not _TRIM:
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _TRIM.append(libc.malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    return _TRIM[0]
