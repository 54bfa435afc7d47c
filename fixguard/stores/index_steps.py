"""The subject index's sessions and revoke as steps: one implementation, any store, sync or async.

:class:`~fixguard.stores.base.SubjectIndex` lists and revokes a subject's
sessions over four single-key primitives. Written here as generators that
yield :class:`~fixguard.core.ops.StoreCall` (``get``, ``retire`` and the
``_index_*`` primitives), the same logic runs on an async store
(:class:`~fixguard.stores.AsyncRedisStore` drives it with ``await``).
"""

from __future__ import annotations

import time

from ..core.ops import Steps, StoreCall
from ..record import FORWARDING, LIVE, ROTATING, CorruptRecord, Record, decode, encode, tombstone
from .base import MAX_HOPS, PENDING_TOMB_TTL, REVOKE_PASSES, SessionSummary, subject_index


def subject_records(subject: str) -> Steps[list[tuple[str, Record]]]:
    """The subject's live records (key, record); keys gone or moved on are dropped from the index."""
    index = subject_index(subject)
    found: list[tuple[str, Record]] = []
    dead: list[str] = []
    for key in (yield StoreCall("_index_members", (index,))):
        value = yield StoreCall("get", (key,))
        record = None
        if value is not None:
            try:
                record = decode(value)
            except CorruptRecord:
                record = None
        if record is None or record.state not in (LIVE, ROTATING):
            dead.append(key)  # gone, ended, or moved on to a newer ID (indexed on its own)
        else:
            found.append((key, record))
    if dead:
        yield StoreCall("_index_remove", (index, dead))
    return found


def sessions(subject: str) -> Steps[list[SessionSummary]]:
    """The subject's sessions that are still alive, oldest first."""
    records = yield from subject_records(subject)
    out = [SessionSummary(key[:12], r.created, r.authenticated, r.touched, r.subject) for key, r in records]
    return sorted(out, key=lambda s: s.created)


def revoke(subject: str) -> Steps[int]:
    """End every session of ``subject`` now (see :meth:`SubjectIndex.revoke`)."""
    index = subject_index(subject)
    ttl = max(1.0, (yield StoreCall("_index_ttl", (index,))))
    now = time.time()
    ended = 0
    seen: set[str] = set()
    handled: list[str] = []
    for _ in range(REVOKE_PASSES):
        # a session moved on while we worked was indexed before it existed: read again
        members = [key for key in (yield StoreCall("_index_members", (index,))) if key not in seen]
        if not members:
            break
        handled += members
        for first in members:
            ended += yield from revoke_chain(first, now, ttl, seen)
    yield StoreCall("_index_remove", (index, handled))
    return ended


def revoke_chain(key: str, now: float, ttl: float, seen: set[str]) -> Steps[int]:
    """Retire the newest record reachable from ``key``; 1 if it was a live session."""
    for _ in range(MAX_HOPS):
        if key in seen:
            return 0
        seen.add(key)
        value = yield StoreCall("get", (key,))
        if value is None:
            yield StoreCall("retire", (key, encode(tombstone(now, now, "revoked")), PENDING_TOMB_TTL))
            return 0
        try:
            record = decode(value)
        except CorruptRecord:
            return 0
        if record.state in (LIVE, ROTATING):
            yield StoreCall("retire", (key, encode(tombstone(record.created, now, "revoked")), ttl))
            return 1
        if record.state not in FORWARDING or not record.next:
            return 0
        key = record.next
    return 0
