"""MemoryStore: the store protocol in one process's memory, bounded.

For a single process (development, one gunicorn worker with threads). Every
operation holds one lock, so it is atomic exactly as Redis would be. Sessions
are not shared between processes: use RedisStore for that.

Bounded: at most ``max_records`` keys (records and subject indexes together).
Keys are kept in least-recently-used order; when a write would go past the
bound, the least recently used keys go first. Losing a record only ever makes
an ID read as unknown (anonymous): an evicted tombstone does not revive the
session it replaced, because nothing else holds that session's jar. Expired
keys vanish on access, and each write also drops a few expired keys from the
cold end, so no request ever scans every key under the lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..record import LIVE, ROTATING, VERSION, guard_of
from .base import Handover, Outcome, SubjectIndex, subject_index

DEFAULT_MAX_RECORDS = 100_000
_SWEEP_STEP = 4  # expired keys looked at from the cold end per write


class MemoryStore(SubjectIndex):
    """An ordered dictionary of ``key -> (value, expires_at)`` behind a lock.

    :param max_records: the most keys held at once (records, tombstones and
        subject indexes); the least recently used go first when it is reached.
    :param clock: monotonic seconds; tests pass their own.
    """

    def __init__(
        self, max_records: int = DEFAULT_MAX_RECORDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            from ..config import ConfigError

            raise ConfigError(f"max_records must be a positive integer, got {max_records!r}")
        self.max_records = max_records
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._sets: OrderedDict[str, tuple[set[str], float]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def __len__(self) -> int:
        """Records (sessions, snapshots, tombstones, token aliases) currently held, expired ones excluded."""
        now = self._clock()
        with self._lock:
            return sum(1 for _, exp in self._data.values() if exp > now)

    def _live(self, key: str, now: float) -> tuple[str, float] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item

    def _put(self, key: str, value: str, expires: float) -> None:
        data = self._data
        data[key] = (value, expires)
        data.move_to_end(key)
        now = self._clock()
        for _ in range(_SWEEP_STEP):  # a few expired keys from the cold end, never a full scan
            oldest = next(iter(data))
            if data[oldest][1] > now or oldest == key:
                break
            del data[oldest]
        self._bound()

    def _bound(self) -> None:
        """Evict least recently used keys until the bound holds (sets count too)."""
        while len(self._data) + len(self._sets) > self.max_records:
            if self._sets and (not self._data or len(self._sets) * 8 > len(self._data)):
                self._sets.popitem(last=False)
            else:
                self._data.popitem(last=False)

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None."""
        with self._lock:
            item = self._live(key, self._clock())
        return None if item is None else item[0]

    def create(self, key: str, value: str, ttl: float) -> bool:
        """Set only if absent."""
        with self._lock:
            return self._create(key, value, ttl)

    def _create(self, key: str, value: str, ttl: float) -> bool:
        now = self._clock()
        if self._live(key, now) is not None:
            return False
        self._put(key, value, now + ttl)
        return True

    def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        """Compare the guard, then overwrite; never creates."""
        with self._lock:
            return self._replace(key, guard, value, ttl) is True

    def _replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool | str | None:
        """True if written (or already holding ``value``); else the current guard, None if gone."""
        now = self._clock()
        item = self._live(key, now)
        if item is None:
            return None
        if item[0] == value:
            return True
        current = guard_of(item[0])
        if current != guard:
            return current
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

    def handover(self, move: Handover) -> Outcome:
        """Index, create, swap or overwrite, re-point the chain: atomically here."""
        with self._lock:
            if move.subject:
                index = subject_index(move.subject)
                self._index_add_locked(index, move.new_key, move.subject_ttl, move.unlink)
            created = self._create(move.new_key, move.new_value, move.new_ttl)
            swapped, old = True, None
            if move.old_key and move.force:
                item = self._live(move.old_key, self._clock())
                old = None if item is None else item[0]
                self._put(move.old_key, move.old_value, self._clock() + (move.old_ttl or 0.001))
            elif move.old_key:
                result = self._replace(move.old_key, move.old_guard, move.old_value, move.old_ttl)
                swapped = result is True
                old = None if result is True or result is None else str(result)
            if move.chain_key:
                item = self._live(move.chain_key, self._clock())
                if item is not None:
                    self._put(move.chain_key, move.chain_value, item[1])
            return Outcome(created, swapped, old)

    # -- subject index primitives ---------------------------------------------------------

    def _index_add(self, index: str, key: str, ttl: float) -> None:
        with self._lock:
            self._index_add_locked(index, key, ttl, "")

    def _index_add_locked(self, index: str, key: str, ttl: float, unlink: str) -> None:
        now = self._clock()
        members, expires = self._sets.get(index, (set(), 0.0))
        if expires <= now:
            members = set()
        members.add(key)
        members.discard(unlink)
        self._sets[index] = (members, max(expires, now + ttl))
        self._sets.move_to_end(index)
        self._bound()

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
