"""The store protocol: a handful of single-key operations with TTLs.

Every operation touches exactly one key and is atomic on it, so the same
semantics hold in one process (:class:`MemoryStore`), on one Redis, and on a
Redis Cluster where two keys may live on different nodes. Values are opaque
strings whose guard prefix (see :mod:`fixguard.record`) is all a store needs to
understand. TTLs are in seconds (floats allowed) and are how idle timeouts and
tombstone lifetimes are enforced.

Writes are update-only: :meth:`Store.replace` never creates a key, so a request
that finishes after its session was rotated, retired or expired cannot bring
the old record back (Django ticket #21608 is the bug this avoids).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class StoreError(Exception):
    """The store did not answer, or answered something unusable: fail closed."""


@runtime_checkable
class Store(Protocol):
    """What FixGuard needs from a session store."""

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None. One round trip."""

    def create(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` only if it does not exist (``SET NX``). False if it did."""

    def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        """Overwrite ``key`` only if it exists and its guard equals ``guard``.

        ``ttl=None`` keeps the key's remaining time to live. False when the key
        is gone or its guard changed (someone froze, retired or unfroze it).
        """

    def freeze(self, key: str, token: str) -> str | None:
        """Atomically mark a live record as rotating under ``token``, keeping its TTL.

        Returns the value as it was *before* the call (None if there was no
        key). Only a value whose guard says live is changed; a rotating or
        retired one is returned untouched so the caller can see why.
        """

    def retire(self, key: str, value: str, ttl: float) -> None:
        """Unconditionally store a tombstone under ``key`` for ``ttl`` seconds."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
