"""MemoryStore: the store protocol in one process's memory.

For a single process (development, one gunicorn worker with threads). Every
operation holds one lock, so it is atomic exactly as Redis would be. Expired
keys vanish on access and in a periodic sweep, so memory does not grow without
bound. Sessions are not shared between processes: use RedisStore for that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..record import LIVE, ROTATING, VERSION, guard_of
from .base import SubjectIndex

_SWEEP_EVERY = 1024  # writes between sweeps of expired keys


class MemoryStore(SubjectIndex):
    """A dictionary of ``key -> (value, expires_at)`` behind a lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._sets: dict[str, tuple[set[str], float]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._writes = 0

    def __len__(self) -> int:
        """Keys currently held, expired ones excluded."""
        now = self._clock()
        with self._lock:
            return sum(1 for _, exp in self._data.values() if exp > now)

    def _live(self, key: str, now: float) -> tuple[str, float] | None:
        item = self._data.get(key)
        if item is not None and item[1] <= now:
            del self._data[key]
            return None
        return item

    def _put(self, key: str, value: str, expires: float) -> None:
        self._data[key] = (value, expires)
        self._writes += 1
        if self._writes >= _SWEEP_EVERY:
            self._writes = 0
            now = self._clock()
            for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[k]
            for k in [k for k, (_, exp) in self._sets.items() if exp <= now]:
                del self._sets[k]

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None."""
        with self._lock:
            item = self._live(key, self._clock())
        return None if item is None else item[0]

    def create(self, key: str, value: str, ttl: float) -> bool:
        """Set only if absent."""
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._put(key, value, now + ttl)
            return True

    def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        """Compare the guard, then overwrite; never creates."""
        with self._lock:
            now = self._clock()
            item = self._live(key, now)
            if item is None or guard_of(item[0]) != guard:
                return False
            self._put(key, value, item[1] if ttl is None else now + ttl)
            return True

    def freeze(self, key: str, token: str) -> str | None:
        """Live to rotating, atomically; return the value before."""
        with self._lock:
            item = self._live(key, self._clock())
            if item is None:
                return None
            value, expires = item
            guard = guard_of(value)
            if guard[:2] == VERSION + LIVE:
                self._put(key, VERSION + ROTATING + token + value[len(guard) :], expires)
            return value

    def retire(self, key: str, value: str, ttl: float) -> None:
        """Store a tombstone unconditionally."""
        with self._lock:
            self._put(key, value, self._clock() + ttl)

    def delete(self, key: str) -> None:
        """Remove if present."""
        with self._lock:
            self._data.pop(key, None)

    # -- subject index primitives ---------------------------------------------------------

    def _index_add(self, index: str, key: str, ttl: float) -> None:
        with self._lock:
            now = self._clock()
            members, expires = self._sets.get(index, (set(), 0.0))
            if expires <= now:
                members = set()
            members.add(key)
            self._sets[index] = (members, max(expires, now + ttl))

    def _index_members(self, index: str) -> list[str]:
        with self._lock:
            members, expires = self._sets.get(index, (set(), 0.0))
            return sorted(members) if expires > self._clock() else []

    def _index_remove(self, index: str, keys: list[str]) -> None:
        with self._lock:
            if index in self._sets:
                self._sets[index][0].difference_update(keys)

    def _index_ttl(self, index: str) -> float:
        with self._lock:
            return max(0.0, self._sets.get(index, (set(), 0.0))[1] - self._clock())
