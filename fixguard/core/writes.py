"""The writes a response makes: rotate, log out, unfreeze, renew, slide, copy, create.

Each write is one :class:`~fixguard.stores.base.Handover` (or one single-key
call), yielded to the shell (see :mod:`fixguard.core.ops`). Nothing here is
ever written under the ID the client presented: a session that changes moves
to a fresh ID, and the one it leaves becomes a snapshot or a tombstone, so a
planted ID never reaches what a login wrote.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from ..cookies import Jar, SetCookie
from ..ids import VerifiedID
from ..record import (
    ALIAS,
    CHAIN,
    LIVE,
    RENEWED,
    RETIRED,
    SNAPSHOT,
    Record,
    encode,
    guard_of,
    tombstone,
)
from ..stores.base import Handover, Outcome, StoreError
from ..tokens import TOKEN_PREFIX
from .ops import Steps, StoreCall
from .state import ExchangeState


class Writes(ExchangeState):
    """The store writes that end a response."""

    def rotate(
        self,
        kind: str,
        now: float,
        updates: list[SetCookie],
        subject: str | None,
        app_tokens: list[str] | None = None,
    ) -> Steps[None]:
        """Login or elevate: a fresh ID for the session, and the chain it came from ends."""
        g, old = self.g, self.record
        base = old.jar if old is not None else {}
        jar = apply_updates(base, updates, now)
        created = now
        if kind == "elevate" and old is not None and old.authenticated is not None:
            created = old.created
            subject = subject or old.subject
        bearer = tuple(app_tokens) if app_tokens and any(app_tokens) else ()
        chain = ("chain:" + secrets.token_hex(20)) if bearer else ""
        basic = self.basic_user or (old.basic if old is not None and kind == "elevate" else "")
        fresh = Record(LIVE, created, now, "", now, subject, jar, bearer=bearer, chain=chain, basic=basic)
        new, signed = g.ids.mint()
        old_key = self.head_key or (self.vid.key if self.vid is not None else "")
        old_created = self.head.created if self.head is not None else None
        tomb = tombstone(old_created if old_created is not None else now, now, kind)
        value = encode(fresh)
        outcome = yield StoreCall(
            "handover",
            (
                Handover(
                    new.key,
                    value,
                    g.live_ttl(fresh, now),
                    old_key=old_key,
                    old_value=encode(tomb),
                    old_ttl=g.tomb_ttl(old_created, now),
                    force=True,
                    subject=subject or "",
                    subject_ttl=g.settings.absolute_timeout,
                ),
            ),
        )
        if not (yield from self.landed(outcome, new.key, value)):
            return
        if kind == "elevate" and self.head is not None and retired(outcome.old):
            # revoked while the elevation ran: the elevated session must not outlive the revoke
            (yield StoreCall("retire", (new.key, encode(tomb), g.tomb_ttl(created, now))))
            self.emit("write_lost", reason="session revoked during elevate")
            self.clear_cookie = True
            return
        self.hand_out(new, signed, created)
        if chain:
            pointer = encode(Record(CHAIN, now, now, next=new.key))
            yield StoreCall("create", (chain, pointer, g.settings.absolute_timeout))
        parent = chain or new.key
        minted: list[str] = []
        for slot, app_token in enumerate(bearer):
            minted.append((yield from self.alias(parent, slot, now)) if app_token else "")
        self.minted = minted
        if self.foreign_burn:
            burn = tombstone(now, now, "burned")
            (yield StoreCall("retire", (self.foreign_burn, encode(burn), g.settings.absolute_timeout)))
        via = self.via or "rule"
        frozen_by_rule = via == "rule" and bool(self.freeze_token)
        self.emit("rotation", signal=kind, new=new.fingerprint, rule=frozen_by_rule, via=via)

    def landed(self, outcome: Outcome, key: str, value: str) -> Steps[bool]:
        """Did the handover's new record really get stored (a replayed call counts), unrevoked?"""
        if outcome.created:
            return True
        current = yield StoreCall("get", (key,))
        if current == value:
            return True  # our own write, reported as "exists" by a replayed pipeline
        if current is not None and not retired(current):
            raise StoreError("a fresh session key was already taken")
        self.emit("write_lost", reason="session revoked during the request")
        self.clear_cookie = True
        return False

    def hand_out(self, vid: VerifiedID, signed: str, created: float) -> None:
        """Queue the cookie for the session's new ID (a persistent one ends with the session)."""
        end = created + self.g.settings.absolute_timeout
        self.outcome.append(("Set-Cookie", self.g.writer.set(signed, end)))
        self.outcome_fingerprint = vid.fingerprint

    def logout(self, now: float, updates: list[SetCookie]) -> Steps[None]:
        """End the chain (its head becomes a tombstone); a fresh anonymous jar gets a fresh ID."""
        g = self.g
        key = self.head_key or (self.vid.key if self.vid is not None else "")
        if key:
            head = self.head
            created = head.created if head is not None else None
            tomb = tombstone(created if created is not None else now, now, "logout")
            ttl = g.tomb_ttl(created, now)
            if head is None or head.authenticated is None:
                ttl = min(ttl, g.settings.renew_grace)  # nothing worth refusing beyond the window
            (yield StoreCall("retire", (key, encode(tomb), ttl)))
        jar = apply_updates({}, updates, now)
        if jar:
            yield from self.create(now, jar, authenticated=None, subject=None, created=now)
        else:
            self.outcome.append(("Set-Cookie", g.writer.clear))
        self.emit("logout")

    def failed_login(self, now: float, updates: list[SetCookie]) -> Steps[None]:
        """A login that did not count: the session goes on, and what the app wrote gets a new ID.

        Never under the presented ID: a login that logged the user in and then
        failed (an error after ``login_user()``) must not leave the logged-in
        jar where the planted ID can reach it.
        """
        record, head = self.record, self.head
        assert record is not None and head is not None
        jar = apply_updates(record.jar, updates, now) if updates else record.jar
        changed = values_differ(jar, record.jar)
        if changed and not self.from_snapshot:
            yield from self.copy(now, jar)  # the frozen head becomes a snapshot of what it had
        else:
            thawed = replace(head, state=LIVE, token=self.freeze_token)
            if not (yield StoreCall("replace", (self.head_key, self.read_guard, encode(thawed), None))):
                self.emit("write_lost", reason="record changed during login")
            if changed:
                yield from self.copy(now, jar, branch=True)
        self.freeze_token = ""
        self.emit("unfrozen", moved=changed)

    def renewal_due(self, record: Record, now: float) -> bool:
        """An authenticated ID older than ``renew_after`` (pre-login IDs are never renewed)."""
        after = self.g.settings.renew_after
        return (
            after is not None
            and record.authenticated is not None
            and not record.bearer  # tokens point at this key: it must not move
            and self.reissue is None
            and not self.from_snapshot
            and self.vid is not None
            and bool(self.vid.sid)
            and now - record.age_start > after
        )

    def renew(self, now: float, updates: list[SetCookie]) -> Steps[None]:
        """Move the session to its derived successor; the old ID answers for a grace window.

        One handover: the successor is indexed and created, then the old record
        swapped to "renewed" by compare-and-set. Whoever sees "renewed" finds
        the successor already there; concurrent renewals agree on one ID; a
        revoke at any moment ends the successor too.
        """
        g, record, vid = self.g, self.record, self.vid
        assert record is not None and vid is not None
        jar = apply_updates(record.jar, updates, now) if updates else record.jar
        if values_differ(jar, record.jar):
            yield from self.copy(now, jar)  # a write mints a fresh ID anyway
            return
        succ, signed = g.ids.successor(vid.sid)
        fresh = replace(record, state=LIVE, token="", jar=jar, touched=now, issued=now, next="")
        old = replace(record, state=RENEWED, token="", jar=jar, touched=now, next=succ.key)
        grace = min(g.settings.renew_grace, max(0.001, g.live_ttl(record, now)))
        outcome = yield StoreCall(
            "handover",
            (
                Handover(
                    succ.key,
                    encode(fresh),
                    g.live_ttl(fresh, now),
                    old_key=self.head_key,
                    old_guard=self.read_guard,
                    old_value=encode(old),
                    old_ttl=grace,
                    subject=record.subject or "",
                    subject_ttl=g.settings.absolute_timeout,
                    unlink=self.head_key,
                ),
            ),
        )
        if not outcome.swapped and (outcome.old or "")[1:2] != RENEWED:
            if outcome.created:
                (yield StoreCall("delete", (succ.key,)))
            self.emit("write_lost", reason="record changed before renewal")
            return
        if not outcome.created:
            current = yield StoreCall("get", (succ.key,))
            if current is None or retired(current):
                self.emit("write_lost", reason="session revoked during renewal")
                self.clear_cookie = True
                return
        self.hand_out(succ, signed, record.created)
        self.emit("renewal", new=succ.fingerprint)

    def update(self, now: float, updates: list[SetCookie]) -> Steps[None]:
        """A request on the newest ID: a jar change moves the session to a new ID; else maybe a slide."""
        record = self.record
        assert record is not None
        slide = now - record.touched > self.g.slide_after
        if not updates and not slide:
            return  # the common read-only request: nothing to compare, nothing to write
        jar = apply_updates(record.jar, updates, now) if updates else record.jar
        if values_differ(jar, record.jar):
            yield from self.copy(now, jar)
            return
        if not slide:
            return  # the same values re-sent (a fresh expiry, a default Path): no write
        fresh = replace(record, jar=jar, touched=now)
        ttl = self.g.live_ttl(fresh, now)
        if not (yield StoreCall("replace", (self.head_key, self.read_guard, encode(fresh), ttl))):
            self.emit("write_lost", reason="record changed during request")

    def branch(self, now: float, updates: list[SetCookie]) -> Steps[None]:
        """A request on an older ID (a snapshot): a write gets a new ID of its own, nothing else."""
        record = self.record
        assert record is not None
        if not updates:
            return
        jar = apply_updates(record.jar, updates, now)
        if values_differ(jar, record.jar):
            yield from self.copy(now, jar, branch=True)

    def copy(self, now: float, jar: Jar, branch: bool = False) -> Steps[None]:
        """Copy-on-write: the session with ``jar`` under a fresh ID, in one round trip.

        The head becomes a snapshot of what it had, pointing at the new ID, for
        ``renew_grace`` (parallel requests still holding it keep working), never
        longer than it would have lived. A ``branch`` (from an older ID) leaves
        the head alone. Created, authenticated, subject and tokens carry over.
        """
        g, record = self.g, self.record
        assert record is not None
        new, signed = g.ids.mint()
        fresh = replace(record, state=LIVE, token="", jar=jar, touched=now, issued=now, next="")
        chain_value = encode(Record(CHAIN, record.created, now, next=new.key)) if record.chain else ""
        move = Handover(
            new.key,
            encode(fresh),
            g.live_ttl(fresh, now),
            subject=record.subject or "",
            subject_ttl=g.settings.absolute_timeout,
            chain_key=record.chain,
            chain_value=chain_value,
        )
        head = self.head
        if not branch and head is not None:
            snapshot = replace(head, state=SNAPSHOT, token="", next=new.key)
            grace = min(g.settings.renew_grace, max(0.001, g.live_ttl(head, now)))
            move = replace(
                move,
                old_key=self.head_key,
                old_guard=self.read_guard,
                old_value=encode(snapshot),
                old_ttl=grace,
                unlink=self.head_key,
            )
        outcome = yield StoreCall("handover", (move,))
        if not outcome.swapped and (outcome.old or "")[1:2] not in (SNAPSHOT, RENEWED):
            # frozen by a login, ended or expired meanwhile: this write must not survive it
            (yield StoreCall("delete", (new.key,)))
            self.emit("write_lost", reason="record changed during request")
            return
        if (yield from self.landed(outcome, new.key, move.new_value)):
            self.hand_out(new, signed, fresh.created)

    def create(
        self,
        now: float,
        jar: Jar,
        authenticated: float | None,
        subject: str | None,
        created: float,
    ) -> Steps[str]:
        """Store a new anonymous record under a fresh ID, queue its cookie; returns the store key."""
        g = self.g
        record = Record(LIVE, created, now, "", authenticated, subject, jar)
        ttl = g.live_ttl(record, now)
        for _ in range(3):
            vid, signed = g.ids.mint()
            if (yield StoreCall("create", (vid.key, encode(record), ttl))):
                self.hand_out(vid, signed, created)
                return vid.key
        raise StoreError("could not create a session record under a fresh key")

    def alias(self, parent: str, slot: int, now: float) -> Steps[str]:
        """A fixguard token standing for app token ``slot`` of session ``parent``.

        Its own key holds only a pointer, so retiring the session (logout,
        rotation, revoke) kills every token that leads to it, with no list to keep.
        """
        g = self.g
        record = Record(ALIAS, now, now, parent=parent, slot=slot)
        for _ in range(3):
            vid, signed = g.ids.mint()
            if (yield StoreCall("create", (vid.key, encode(record), g.settings.absolute_timeout))):
                return TOKEN_PREFIX + signed
        raise StoreError("could not create a token under a fresh key")


def apply_updates(jar: Jar, updates: list[SetCookie], now: float) -> Jar:
    """The jar after the app's Set-Cookie headers, with expired cookies dropped."""
    out = {name: c for name, c in jar.items() if c.live(now)}
    for update in updates:
        if update.cookie is None:
            out.pop(update.name, None)
        else:
            out[update.name] = update.cookie
    return out


def retired(value: str | None) -> bool:
    """Is this stored value a tombstone?"""
    return value is not None and guard_of(value)[1:2] == RETIRED


def values_differ(a: Jar, b: Jar) -> bool:
    """A change that is a write: a cookie set, changed or deleted.

    A re-send of the same value with other attributes (a fresh expiry, a
    default Path taken from the request path) is no write: apps that refresh
    their cookie on every response must not cost a new ID per request.
    """
    if a.keys() != b.keys():
        return True
    return any(a[name].value != b[name].value for name in a)
