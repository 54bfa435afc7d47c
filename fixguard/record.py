"""The session record and its compact, versioned wire format.

A stored value is ``<guard>|<json>``. The guard is the part atomic operations
compare, so a store can check state without decoding JSON (Redis does it in a
few lines of Lua): a version digit, a state letter — ``L`` live, ``R``
rotating (frozen by a login in flight), ``T`` tombstone, ``N`` renewed (its
successor is live; this one answers for a short grace), ``S`` snapshot (a
write moved the session to a new ID; this one keeps the jar it had, for a
short window), ``A`` a bearer token's alias pointing at its session, ``C`` a
token session's chain pointer (which ID is its newest) — and the token of the
last freeze.

IDs are immutable: the jar under an ID never changes. Snapshots and renewed
records name their successor's key (``next``), so whoever presents an old ID
can find the newest one and see whether the chain was ended.
Because the token survives an unfreeze, a request that read the record before
a freeze cannot write after it, even once the freeze is undone.

Anything that does not decode exactly is "no session", never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NamedTuple

from .cookies import Jar, JarCookie

VERSION = "1"
LIVE, ROTATING, RETIRED, RENEWED, ALIAS, SNAPSHOT, CHAIN = "L", "R", "T", "N", "A", "S", "C"
#: States whose ``next`` leads on to a newer record of the same session.
FORWARDING = frozenset((RENEWED, SNAPSHOT, CHAIN))
MAX_VALUE = 64 * 1024  # a record larger than this was not written by fixguard

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_loads = json.JSONDecoder().decode


class CorruptRecord(ValueError):
    """A stored value that is not a fixguard record of a version we understand."""


@dataclass(frozen=True, slots=True)
class Record:
    """One session (live or frozen) or one tombstone."""

    state: str
    created: float
    touched: float
    token: str = ""
    authenticated: float | None = None
    subject: str | None = None
    jar: Jar = field(default_factory=dict)
    retired: float | None = None
    reason: str | None = None
    issued: float | None = None  # when this ID was minted (renewal age); None: at ``created``
    bearer: tuple[str, ...] = ()  # the app's own tokens, by token_fields slot ("" where none)
    # store keys of other records: out of repr(), so error reporters that record locals miss them
    parent: str = field(default="", repr=False)  # alias only: key of the session (or its chain) it belongs to
    slot: int = 0  # alias only: which of the session's app tokens it stands for
    next: str = field(default="", repr=False)  # snapshot, renewed, chain: the store key of the newer record
    chain: str = field(default="", repr=False)  # a session with fixguard tokens: the key of its chain pointer
    basic: str = field(default="", repr=False)  # keyed hash of the Basic/Digest user a detected login saw

    @property
    def age_start(self) -> float:
        """When the ID holding this record was minted."""
        return self.created if self.issued is None else self.issued

    @property
    def guard(self) -> str:
        """What compare-and-set operations compare."""
        return VERSION + self.state + self.token

    @property
    def live(self) -> bool:
        """A session that may reach the app."""
        return self.state == LIVE

    def with_jar(self, jar: Jar) -> Record:
        """The same record holding another jar."""
        return replace(self, jar=jar)


def tombstone(created: float, now: float, reason: str) -> Record:
    """The record that replaces a session whose ID must be refused from ``now`` on."""
    return Record(RETIRED, created, now, retired=now, reason=reason)


def guard_of(value: str) -> str:
    """The guard prefix of a stored value ("" if it has none)."""
    bar = value.find("|")
    return value[:bar] if 0 < bar <= 40 else ""


def encode(record: Record) -> str:
    """The stored form: guard, bar, compact JSON."""
    body: dict[str, Any] = {"c": round(record.created, 3)}
    if record.state == RETIRED:
        body["r"] = round(record.retired or record.touched, 3)
        if record.reason:
            body["w"] = record.reason
    elif record.state == ALIAS:
        body["p"] = record.parent
        body["n"] = record.slot
    elif record.state == CHAIN:
        body["x"] = record.next
    else:
        if record.next:
            body["x"] = record.next
        if record.chain:
            body["h"] = record.chain
        if record.basic:
            body["u"] = record.basic
        body["t"] = round(record.touched, 3)
        if record.authenticated is not None:
            body["a"] = round(record.authenticated, 3)
        if record.subject is not None:
            body["s"] = record.subject
        if record.issued is not None and record.issued != record.created:
            body["i"] = round(record.issued, 3)
        if record.bearer:
            body["b"] = list(record.bearer)
        if record.jar:
            body["j"] = {
                name: c.value if c.path == "/" and c.expires is None else [c.value, c.path, c.expires]
                for name, c in record.jar.items()
            }
    return f"{record.guard}|{_dumps(body)}"


@lru_cache(maxsize=4096)
def decode(value: str | bytes) -> Record:
    """Parse a stored value, strictly; CorruptRecord on anything unexpected.

    Memoised: a session read on every request is stored as the same string
    until it changes, and a Record is immutable — its jar is shared between
    callers, who never mutate it (they build a new one).
    """
    try:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if len(value) > MAX_VALUE:
            raise CorruptRecord("record too large")
        guard, bar, payload = value.partition("|")
        if not bar or len(guard) < 2 or guard[0] != VERSION or guard[1] not in "LRTNASC":
            raise CorruptRecord("unknown record version or state")
        state, token = guard[1], guard[2:]
        if not token.isalnum() and token:
            raise CorruptRecord("bad token")
        body = _loads(payload)
        if not isinstance(body, dict):
            raise CorruptRecord("record body is not an object")
        created = _time(body, "c")
        if state == RETIRED:
            retired = _time(body, "r")
            reason = body.get("w")
            if reason is not None and not isinstance(reason, str):
                raise CorruptRecord("bad tombstone reason")
            return Record(RETIRED, created, retired, token, retired=retired, reason=reason)
        if state == ALIAS:
            parent, slot = body.get("p"), body.get("n")
            if not isinstance(parent, str) or isinstance(slot, bool) or not isinstance(slot, int):
                raise CorruptRecord("bad alias")
            return Record(ALIAS, created, created, token, parent=parent, slot=slot)
        nxt = body.get("x", "")
        if not isinstance(nxt, str) or (state in (SNAPSHOT, CHAIN) and not nxt):
            raise CorruptRecord("bad successor")
        if state == CHAIN:
            return Record(CHAIN, created, created, token, next=nxt)
        chain = body.get("h", "")
        basic = body.get("u", "")
        if not isinstance(chain, str) or not isinstance(basic, str):
            raise CorruptRecord("bad chain or user")
        touched = _time(body, "t")
        authenticated = _time(body, "a") if "a" in body else None
        subject = body.get("s")
        if subject is not None and not isinstance(subject, str):
            raise CorruptRecord("bad subject")
        issued = _time(body, "i") if "i" in body else None
        jar = _jar(body.get("j", {}))
        bearer = body.get("b", [])
        if not isinstance(bearer, list) or not all(isinstance(b, str) for b in bearer):
            raise CorruptRecord("bad bearer tokens")
        return Record(
            state,
            created,
            touched,
            token,
            authenticated,
            subject,
            jar,
            issued=issued,
            bearer=tuple(bearer),
            next=nxt,
            chain=chain,
            basic=basic,
        )
    except CorruptRecord:
        raise
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecord(str(exc)) from None


def _time(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorruptRecord(f"missing or bad time {key!r}")
    return float(value)


def _jar(raw: Any) -> Jar:
    if not isinstance(raw, dict):
        raise CorruptRecord("jar is not an object")
    jar: Jar = {}
    for name, item in raw.items():
        if isinstance(item, str):
            jar[name] = JarCookie(item)
        elif (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and (item[2] is None or (isinstance(item[2], int | float) and not isinstance(item[2], bool)))
        ):
            jar[name] = JarCookie(item[0], item[1], None if item[2] is None else float(item[2]))
        else:
            raise CorruptRecord(f"bad jar entry for {name!r}")
    return jar


class SessionInfo(NamedTuple):
    """What the app may know about the client's fixguard session (``environ["fixguard.session"]``).

    Never the ID itself: ``id_hash`` is a short keyed hash, fine for logs.
    ``state`` is ``"none"``, ``"live"`` or ``"frozen"`` (a login for this
    session is in flight, so this request runs as anonymous). Read-only; a
    named tuple because one is built on every request.
    """

    state: str = "none"
    authenticated: bool = False
    created: float | None = None
    authenticated_at: float | None = None
    id_hash: str | None = None
    subject: str | None = None


NO_SESSION = SessionInfo()


@lru_cache(maxsize=4096)
def live_info(value: str, id_hash: str) -> SessionInfo:
    """The app's view of a live session read as ``value``: memoised like :func:`decode`."""
    record = decode(value)
    auth = record.authenticated
    return SessionInfo("live", auth is not None, record.created, auth, id_hash, record.subject)
