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

A session that changes moves to a new ID (:meth:`Store.handover`): the new
record is created, the old one swapped to a snapshot or a tombstone, and the
subject index updated, all in one round trip of single-key commands; the
order inside it (index, then the new key, then the old one) is what lets
:meth:`SubjectIndex.revoke` never miss a session that is being created.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Pointers a reader follows from an old ID to its newest one before giving up.
MAX_HOPS = 8
#: How long revoke's tombstone guards a key that an in-flight handover may be about to create.
PENDING_TOMB_TTL = 60.0
#: Times revoke re-reads a subject's index for sessions that moved on while it worked.
REVOKE_PASSES = 4


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

    def handover(self, move: Handover) -> Outcome:
        """Create ``move.new_key`` and swap or overwrite ``move.old_key``, in one round trip.

        In this order, each command on one key: index the new key under the
        subject (dropping ``unlink``), ``SET NX`` the new record, then either
        compare-and-set the old key on its guard (``force=False``) or overwrite
        it unconditionally (a tombstone), then point ``chain_key`` at the new key
        if that chain still exists. A replayed call (a retried connection) is
        recognised, not reported as a conflict.
        """

    def link(self, subject: str, key: str, ttl: float) -> None:
        """Index session ``key`` under ``subject`` (see :class:`SubjectIndex`)."""

    def sessions(self, subject: str) -> list[SessionSummary]:
        """The subject's live sessions."""

    def revoke(self, subject: str) -> int:
        """Retire every session of ``subject``; returns how many."""


@dataclass(frozen=True, slots=True)
class Handover:
    """One move of a session to a new ID (see :meth:`Store.handover`).

    ``old_key=""`` creates only (a branch from a snapshot: nothing to swap).
    ``old_ttl=None`` keeps the old key's remaining time to live.
    """

    new_key: str
    new_value: str
    new_ttl: float
    old_key: str = ""
    old_guard: str = ""
    old_value: str = ""
    old_ttl: float | None = None
    force: bool = False
    subject: str = ""
    subject_ttl: float = 0.0
    unlink: str = ""
    chain_key: str = ""
    chain_value: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handover did. ``old`` is the old key's guard when the swap was refused
    (None: the key was gone), or its previous value after a forced overwrite."""

    created: bool
    swapped: bool
    old: str | None = None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One live session of a subject, as an operator may see it: never the ID."""

    fingerprint: str
    created: float
    authenticated: float | None
    touched: float
    subject: str | None


def subject_index(subject: str) -> str:
    """The index key of a subject: a hash, so the store holds no user names in key space."""
    return "subject:" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:40]


class SubjectIndex(ABC):
    """Sessions per subject, built on four single-key primitives a store provides.

    ``link`` adds a session key to its subject's index (one set per subject,
    expiring with the longest session in it); ``sessions`` lists the live ones,
    pruning what expired; ``revoke`` turns every one of them into a tombstone,
    e.g. after a password change. Each step touches one key, so Redis Cluster
    needs nothing special.
    """

    @abstractmethod
    def get(self, key: str) -> str | None:
        """See :class:`Store`."""

    @abstractmethod
    def retire(self, key: str, value: str, ttl: float) -> None:
        """See :class:`Store`."""

    @abstractmethod
    def _index_add(self, index: str, key: str, ttl: float) -> None:
        """Add ``key`` to the set ``index``; keep the set for at least ``ttl`` seconds."""

    @abstractmethod
    def _index_members(self, index: str) -> list[str]:
        """Every key in the set ``index`` (empty if it is gone)."""

    @abstractmethod
    def _index_remove(self, index: str, keys: list[str]) -> None:
        """Remove ``keys`` from the set ``index``."""

    @abstractmethod
    def _index_ttl(self, index: str) -> float:
        """Seconds the set ``index`` still lives (0 if gone)."""

    def link(self, subject: str, key: str, ttl: float) -> None:
        """Record that session ``key`` belongs to ``subject`` (for at least ``ttl`` seconds)."""
        self._index_add(subject_index(subject), key, ttl)

    def sessions(self, subject: str) -> list[SessionSummary]:
        """The subject's sessions that are still alive, oldest first (see :mod:`.index_steps`)."""
        from ..core.ops import drive
        from . import index_steps

        result: list[SessionSummary] = drive(index_steps.sessions(subject), self)
        return result

    def revoke(self, subject: str) -> int:
        """End every session of ``subject`` now; every ID of every chain is refused from then on.

        Each indexed key is followed to its newest record (a write or renewal
        may have moved it on meanwhile), and that is retired. A key that does
        not exist yet gets a tombstone too: a handover that indexed it is about
        to create it, and its ``SET NX`` must then fail. The steps are
        :func:`.index_steps.revoke`, which the async store runs too.
        """
        from ..core.ops import drive
        from . import index_steps

        ended: int = drive(index_steps.revoke(subject), self)
        return ended
