"""The request phase: what the presented ID, token and credentials mean, before the app runs.

Trusts only fixguard's own signed ID (or token) and what the store says about
it. The client's copy of an app cookie is dropped; a foreign bearer token is
kept from the app (except on passthrough paths) and remembered so a login can
burn it. A login (a rule, or credentials in the request) freezes the session's
newest record first, so no request riding on the old ID can finish after it.
Every store call is yielded (see :mod:`fixguard.core.ops`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace

from ..cookies import jar_pairs
from ..detect import BODY_METHODS, authorization_user, carries_credentials, field_names, may_carry
from ..record import (
    ALIAS,
    CHAIN,
    FORWARDING,
    LIVE,
    RENEWED,
    RETIRED,
    ROTATING,
    SNAPSHOT,
    CorruptRecord,
    Record,
    decode,
    guard_of,
)
from ..secrecy import Sealed
from ..stores.base import MAX_HOPS, StoreError
from ..tokens import TOKEN_PREFIX, parse_authorization
from .ops import ReadBody, Steps, StoreCall
from .state import Answer, ExchangeState, detectable

#: Tombstones whose ID the same browser may still send in parallel for a moment.
_QUIET_REASONS = frozenset(("login", "elevate", "logout"))
#: ``Prepared.authorization`` when the app's Authorization header stays as the client sent it.
UNCHANGED = None


@dataclass(slots=True)
class Prepared:
    """What the request phase decided: a refusal, or the headers the app is to see.

    ``cookie``: the app's Cookie header (None: none at all). ``authorization``:
    None leaves the client's header alone, ``""`` removes it, anything else
    replaces it (the app's own token, for a fixguard token). The shell applies
    these at once and drops this object before the app runs.
    """

    refusal: Answer | None = None
    cookie: str | None = None
    authorization: str | None = UNCHANGED
    drop_accept_encoding: bool = False

    def __repr__(self) -> str:
        return "<fixguard.Prepared>"


#: What most requests without a cookie get: no Cookie header for the app, nothing else (never mutated).
NOTHING_TO_CHANGE = Prepared()


class RequestPhase(ExchangeState):
    """Verify the ID, load the session, decide what the app sees."""

    def unneeded(self, cookie: str | None, authorization: str | None) -> Prepared | None:
        """The request phase of a request with nothing to look at, decided without a step.

        No cookie, no Authorization header, no body to inspect for credentials:
        nothing to verify and nothing to read. None: drive :meth:`prepare`.
        """
        if cookie or authorization is not None:
            return None
        s = self.g.settings
        if (
            self.logins
            and s.detect_logins
            and s.credential_fields
            and not self.rules
            and self.method in BODY_METHODS
            and detectable(self.request.content_type)
        ):
            return None
        if self.rotating and self.g.token_paths:
            return Prepared(drop_accept_encoding=True)
        return NOTHING_TO_CHANGE

    def prepare(self, cookie: str | None, authorization: str | None) -> Steps[Prepared]:
        """Verify the ID, load the session; a refusal, or the app's rebuilt headers.

        Everything that reads the client's cookie and token happens here, in a
        frame that has returned before the app runs: an app exception unwinds
        only through frames whose locals hold no secret (error reporters record them).
        """
        g = self.g
        kept: list[str] = []
        out = Prepared()
        if cookie:
            inbound = g.cookie_filter.split(cookie)
            kept, own = inbound.kept, inbound.own
            if own:
                if len(own) > 1:
                    self.emit("bad_cookie", reason="duplicated")
                    self.clear_cookie = True
                else:
                    self.vid = g.ids.verify(own[0])
                    if self.vid is None:
                        self.emit("bad_signature")
                        self.clear_cookie = True
            if inbound.oversized:
                self.emit("bad_cookie", reason="oversized")
        if g.token_paths and authorization is not None and self.bearer_in(authorization):
            out.authorization = ""
        # a matching rule decides alone; without Authorization or a body there is nothing to detect
        looks = authorization or self.method in BODY_METHODS
        if looks and self.logins and g.settings.detect_logins and not self.rules:
            yield from self.detect(authorization)
        try:
            if self.vid is not None:
                yield from self.load()
            if self.detected == "basic":
                yield from self.basic_login()
            if self.foreign_burn and (yield from self.burned(self.foreign_burn)):
                out.refusal = self.token_refused_response()
                return out
        except StoreError as exc:
            out.refusal = self.store_down(exc)
            return out
        if self.retired_seen is not None and g.settings.on_fixation == "reject":
            out.refusal = self.fixation_response()
            return out
        if self.token_slot >= 0 and self.record is not None:
            bearer = self.record.bearer
            if self.token_slot < len(bearer) and bearer[self.token_slot]:
                out.authorization = "Bearer " + bearer[self.token_slot]

        record = self.record
        if record is not None and record.jar:
            pairs = jar_pairs(record.jar, self.full_path(), self.now)
            kept = kept + pairs if kept else pairs
        out.cookie = "; ".join(kept) if kept else None
        # a login/elevate: its tokens must come back in a body fixguard can read
        out.drop_accept_encoding = self.rotating and bool(g.token_paths)
        return out

    def detect(self, authorization: str | None) -> Steps[None]:
        """Credentials in the request make it a login, known before the app runs (like a rule).

        A body with a password-like field freezes the session at once. Basic
        or Digest credentials are a login only for a session not already
        authenticated as that user: decided once the record is read.
        """
        g, s = self.g, self.g.settings
        if authorization and not self.via_token:
            user = authorization_user(authorization)
            if user is not None:
                self.basic_user = g.ids.key_for("basic-user:" + user)[:24]
                self.detected = "basic"
                return
        if self.method not in BODY_METHODS or not s.credential_fields:
            return
        content_type = self.request.content_type
        if content_type is None or not detectable(content_type):
            return  # no body worth reading: a GET, an upload of another type
        body = yield ReadBody(s.max_detect_body)
        if not body or not may_carry(body, s.credential_fields):
            return
        names = field_names(content_type, body, s.max_detect_body)
        if carries_credentials(names, s.credential_fields):
            self.detected = "body"
            self.rotating = True
            # Under a fixguard token this may be a password change (keep the token) or a login
            # presenting a planted token (rotate): frozen either way, decided by the answer.
            self.token_login = self.via_token

    def basic_login(self) -> Steps[None]:
        """Basic/Digest credentials: a login unless the session is already that user's."""
        record = self.record
        if record is not None and record.authenticated is not None and record.basic == self.basic_user:
            self.detected = ""  # the browser re-sends the same user's credentials: nothing new
            return
        self.rotating = True
        if record is None or self.from_snapshot or not self.head_key:
            return  # no live head of our own to freeze (none, retired, frozen elsewhere)
        token = secrets.token_hex(8)
        value = yield StoreCall("freeze", (self.head_key, token))
        if value is None or guard_of(value) != self.read_guard:
            # changed since we read it: run as a login without a session to carry over
            self.record = self.head = None
            self.head_key = ""
            self.frozen_elsewhere = value is not None and guard_of(value)[1:2] == ROTATING
            return
        self.freeze_token = token
        self.read_guard = self.read_guard[:1] + ROTATING + token
        self.read_at = time.monotonic()

    def bearer_in(self, authorization: str) -> bool:
        """Take the Authorization header apart: ours is verified, anything else discarded.

        A fixguard token names the session (it wins over the cookie). A foreign
        bearer token never reaches the app, except on ``token_passthrough``
        paths; it is remembered so a login can burn it. True when the header
        must not reach the app as sent.
        """
        g = self.g
        bearer = parse_authorization(authorization)
        if bearer.token is None and not bearer.garbled:
            return False  # another scheme (Basic, ...): not ours to touch
        token = bearer.token
        if token is not None and not bearer.ours and g.passthrough.match(self.method, self.path):
            self.foreign_burn = g.burn_key(token)
            return False
        if token is None:
            self.emit("bad_token", reason="malformed")
        elif bearer.ours:
            vid = g.ids.verify(token[len(TOKEN_PREFIX) :])
            if vid is None:
                self.emit("bad_token", reason="signature")
            else:
                self.vid, self.via_token = vid, True
        else:
            self.foreign_burn = g.burn_key(token)
        return True

    def burned(self, burn_key: str) -> Steps[bool]:
        """Was this foreign token presented on a login? Then it is refused from now on."""
        value = yield StoreCall("get", (burn_key,))
        if value is None or guard_of(value)[1:2] != RETIRED:
            return False
        self.emit("token_blocked")
        return True

    def load(self) -> Steps[None]:
        """Look the presented ID up (freezing first for a login) and find its chain's head.

        A token's alias leads to its session's chain, the chain to the newest
        ID. A renewed ID within its grace window stands for its successor (the
        client is told it). A snapshot (an ID the session has moved on from
        by a write) runs with its own jar, as an old cookie value would, but
        only while the chain it belongs to is alive: its head is followed, and
        a dead or frozen head decides for it. A login freezes the head.
        """
        g = self.g
        token = secrets.token_hex(8) if self.rotating else ""
        vid = self.vid
        assert vid is not None
        key = vid.key
        value = yield (StoreCall("freeze", (key, token)) if token else StoreCall("get", (key,)))
        self.read_at = time.monotonic()
        presented = True  # the record in hand is the one the client named
        snapshot: Record | None = None
        snapshot_value = ""
        record: Record | None = None
        for hop in range(MAX_HOPS):
            if value is None:
                self.emit("expired", reason="unknown" if presented else "ended")
                self.clear_cookie = True
                return
            try:
                record = decode(value)
            except CorruptRecord as exc:
                self.emit("corrupt_record", reason=str(exc)[:80])
                self.clear_cookie = True
                return
            state = record.state
            if token and state == ROTATING and record.token == token:
                # our own freeze, seen again because the store client retried the call
                record, state = replace(record, state=LIVE), LIVE
            if state == ALIAS:
                if not self.via_token or hop:
                    self.emit("bad_cookie", reason="a token's ID presented as a cookie")
                    return
                self.token_slot = record.slot
                key = record.parent
            elif state == CHAIN:
                if self.token_slot < 0 or hop != 1:
                    self.emit("bad_cookie", reason="a chain presented as an ID")
                    return
                key = record.next
            elif self.via_token and self.token_slot < 0:
                self.emit("bad_token", reason="a cookie's ID presented as a token")
                return
            elif state == RENEWED and presented and vid.sid:
                succ, successor = g.ids.successor(vid.sid)
                self.reissue = Sealed(successor)
                self.vid = vid = succ
                key = succ.key
            elif state in FORWARDING and record.next:  # a snapshot, or a renewed one reached by pointer
                if presented and state == SNAPSHOT:
                    snapshot, snapshot_value, presented = record, value, False
                key = record.next
            else:
                break
            value = yield (StoreCall("freeze", (key, token)) if token else StoreCall("get", (key,)))
        else:
            self.emit("expired", reason="too many hops")
            self.clear_cookie = True
            return
        assert record is not None
        self.head_key = key
        if record.state == RETIRED:
            self.retired_seen = record
            # A login, elevate or logout moments ago: this may be the same browser's parallel
            # request, whose answer can arrive after the new cookie. Refuse it, but leave the
            # cookie alone: clearing or replacing it would log the user out at random.
            young = record.retired is not None and time.time() - record.retired < g.settings.renew_grace
            self.quiet = young and record.reason in _QUIET_REASONS
            self.emit(
                "fixation_blocked",
                reason=record.reason or "retired",
                action=g.settings.on_fixation,
                cookie="kept" if self.quiet else "cleared",
            )
            self.clear_cookie = not self.quiet
            return
        if record.state == ROTATING:
            self.frozen_elsewhere = True
            self.emit("frozen_request", login=self.rotating)
            return
        if record.state != LIVE:
            self.emit("expired", reason="renewed")
            self.clear_cookie = True
            return
        self.now = now = time.time()
        s = g.settings
        if now - record.created > s.absolute_timeout or now - record.touched > s.idle_timeout:
            self.emit("expired", reason="timeout")
            self.clear_cookie = True
            self.head_key = ""
            yield StoreCall("delete", (key,))
            return
        self.head = record
        if token:
            self.freeze_token = token
            self.read_guard = record.guard[:1] + ROTATING + token
        else:
            self.read_guard = record.guard
        if snapshot is not None:
            self.record, self.value, self.from_snapshot = snapshot, snapshot_value, True
        else:
            self.record, self.value = record, value
