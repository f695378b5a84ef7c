"""A thread-safe TTL cache with a shorter TTL for negative results and single-flight computation.

Concurrent callers asking for the same key while it is being computed wait for that one computation instead
of starting their own (the 50 identical admissions a rollout can fire make one S3 check).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Flight(Generic[T]):
    done: threading.Event
    value: T | None = None
    error: BaseException | None = None


class TTLCache(Generic[T]):
    def __init__(
        self,
        ttl: float,
        negative_ttl: float,
        *,
        is_positive: Callable[[T], bool] = bool,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._is_positive = is_positive
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._flights: dict[Hashable, _Flight[T]] = {}
        self._lock = threading.Lock()

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], T], *, wait_timeout: float | None = None
    ) -> tuple[T, str]:
        """(value, how): how is "hit", "shared" (waited for another caller's computation) or "miss".

        A waiter that runs out of `wait_timeout` raises TimeoutError; an exception in `compute` reaches
        every caller of that flight and is not cached.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self._clock():
                self._entries.move_to_end(key)
                return entry[1], "hit"
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight(threading.Event())
        if not leader:
            if not flight.done.wait(wait_timeout):
                raise TimeoutError("an identical check is still running")
            if flight.error is not None:
                raise flight.error
            return flight.value, "shared"
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
            raise
        flight.value = value
        self.put(key, value)
        with self._lock:
            self._flights.pop(key, None)
        flight.done.set()
        return value, "miss"

    def put(self, key: Hashable, value: T) -> None:
        ttl = self.ttl if self._is_positive(value) else self.negative_ttl
        with self._lock:
            if ttl <= 0:
                self._entries.pop(key, None)
                return
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
