"""One exchange's state: the request's facts, what was read, what goes out; refusals and events.

Per-request state lives on an :class:`ExchangeState` and nothing is shared
between requests. Defaults live on the class, so a request that needs none of
them (most requests) pays only for what it sets. The two fields that name
store keys are slots: error reporters that walk ``vars()`` of what a frame
holds do not see them. The raw Cookie and Authorization headers are never
kept here: they are arguments of the request phase, gone before the app runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..caching import keep_out_of_shared_caches
from ..cookies import SetCookie
from ..events import Event
from ..ids import VerifiedID
from ..record import NO_SESSION, Record, SessionInfo, live_info
from ..responses import SESSION_CHANGED, SESSION_ENDED, STORE_UNAVAILABLE, TOKEN_INVALID
from ..secrecy import Sealed
from ..signals import ROTATING as ROTATING_SIGNALS
from ..signals import Rule
from ..stores.base import StoreError

if TYPE_CHECKING:
    from .guard import Guard

Headers = list[tuple[str, str]]
#: A whole answer fixguard sends instead of the app's: status line, headers, body.
Answer = tuple[str, Headers, bytes]

_LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
_INSECURE_HINT = (
    "fixguard sent its Secure cookie in answer to a plain-http request: browsers drop it, so every "
    "login will seem to fail. For plain-http development pass secure=False (FIXGUARD_SECURE=false); "
    "behind a TLS proxy, make the request's scheme say https (e.g. werkzeug's ProxyFix *inside* "
    "FixGuard: FixGuard(ProxyFix(app, x_proto=1), ...); uvicorn --proxy-headers for ASGI)"
)
MAX_SUBJECT = 256
_DETECTABLE = re.compile(
    r"^\s*(?:application/x-www-form-urlencoded|multipart/form-data|application/(?:[\w.+-]+\+)?json)\s*(?:;|$)",
    re.IGNORECASE,
)


def host_name(host: str) -> str:
    """A Host header's name, without port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Request(Protocol):
    """What the core needs to know about a request, whatever server it came from.

    ``method`` and ``path`` are read for every request; the rest only when a
    decision needs them, so a shell may compute them lazily (the WSGI shell
    reads them from the environ on access). ``context`` is the mapping the app
    sees (the WSGI environ, the ASGI scope): ``fixguard.signal()`` writes its
    signals there. ``view`` is what an ``on_reject`` hook is shown and where
    ``HTTP_ACCEPT`` is read (an environ, or an environ-like view of a scope).
    """

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def script_name(self) -> str: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def remote_addr(self) -> str: ...
    @property
    def context(self) -> MutableMapping[str, Any]: ...
    @property
    def view(self) -> Mapping[str, Any]: ...


@dataclass(slots=True)
class RequestFacts:
    """A :class:`Request` as plain data (the ASGI shell's, and tests')."""

    method: str
    path: str
    script_name: str
    content_type: str | None
    scheme: str
    host: str
    remote_addr: str
    context: MutableMapping[str, Any] = field(repr=False)
    view: Mapping[str, Any] = field(repr=False)


@dataclass(slots=True)
class Pending:
    """A login response held back until its body (and so its tokens) is known."""

    out: Headers
    updates: list[SetCookie]
    signals: list[str]
    subject: str | None
    chunks: list[bytes] = field(default_factory=list)


class ExchangeState:
    """The fields of one request/response pair, and what every phase uses: events, refusals."""

    __slots__ = ("__dict__", "head_key", "value")
    head_key: str  # store key of the newest record of the session's chain
    value: str  # the stored value the session was read from (it may name newer keys)

    vid: VerifiedID | None = None
    record: Record | None = None  # the live session the app runs with (if any)
    read_guard = ""
    read_at = 0.0
    freeze_token = ""  # set when this request froze the record
    frozen_elsewhere = False  # another login froze it: run anonymous and inert
    retired_seen: Record | None = None
    clear_cookie = False
    reissue: Sealed[str] | None = None  # signed successor ID to send (the client presented a renewed ID)
    via_token = False  # the session was named by a bearer token, not the cookie
    token_slot = -1  # which of the session's app tokens that bearer token stands for
    foreign_burn = ""  # where a bearer token fixguard did not mint is burned (a keyed hash, not the token)
    minted: Sequence[str] = ()  # fixguard tokens for the login response's body
    sealed_outcome: Sealed[Headers] | None = None  # ``outcome`` once sent (see seal_outcome)
    pending: Pending | None = None  # a login response held back to swap its tokens
    processed = False
    rotating = False  # a login/elevate rule matched (or credentials were seen): freeze first
    head: Record | None = None  # the record at ``head_key``, as read (live)
    from_snapshot = False  # the client named an older ID: ``record`` is its snapshot
    outcome_fingerprint: str | None = None
    replacement: Answer | None = None
    now = 0.0  # wall-clock time the session was read
    active = True  # this call is in flight: a second guard meeting it is a misconfiguration
    quiet = False  # a recently retired ID: refuse, but never touch the client's cookie
    detected = ""  # credentials seen in the request: "body", or "basic" (a login if another user)
    basic_user = ""  # keyed hash of the Basic/Digest username
    via = ""  # what raised the rotating signal: rule, credentials, call or header
    # credentials under a fixguard token: a login only if the answer hands out tokens (else a
    # password change of a logged-in API client, whose token must keep working)
    token_login = False
    logins = True  # False for a WebSocket handshake: nothing it carries can be a login

    def __init__(self, guard: Guard, request: Request) -> None:
        self.g = guard
        self.head_key = self.value = ""
        self.request = request
        self.method = request.method
        self.path = request.path
        self.rules: list[Rule] = guard.rules.match(self.method, self.path) if self.logins else []
        if self.rules:
            self.rotating = any(r.signal in ROTATING_SIGNALS for r in self.rules)
        self.outcome: Headers = []

    def info(self) -> SessionInfo:
        """What the app is told about its session (``fixguard.session``)."""
        record, vid = self.record, self.vid
        if self.frozen_elsewhere and vid is not None:
            return SessionInfo(state="frozen", id_hash=vid.fingerprint)
        if record is None or vid is None:
            return NO_SESSION
        return live_info(self.value, vid.key[:12])

    def full_path(self) -> str:
        return (self.request.script_name or "") + self.path

    def seal_outcome(self) -> None:
        """fixguard's Set-Cookie has left with the headers: from now on keep it only sealed.

        The app may still raise (streaming its body, closing it), and error
        reporters record what the frames on that path can reach.
        """
        if self.outcome:
            self.sealed_outcome = Sealed(self.outcome)
            self.outcome = []
        if self.minted:
            self.minted = ()

    def sent_outcome(self) -> Headers:
        """fixguard's headers as they were sent (for a start_response repeated with exc_info)."""
        return self.sealed_outcome.open() if self.sealed_outcome is not None else self.outcome

    def insecure_transport(self) -> None:
        """A ``Secure`` cookie sent over plain http to a real host: the browser drops it. Say so once."""
        host = host_name(self.request.host)
        if host in _LOCAL_HOSTS or host in self.g.warned_hosts:
            return
        self.g.warned_hosts.add(host)
        self.emit("insecure_transport", host=host, hint=_INSECURE_HINT)

    # -- refusals ----------------------------------------------------------------------

    def fixation_response(self) -> Answer:
        clear = None if self.quiet else self.g.writer.clear  # see load(): the new cookie may be there
        status, headers, body = self.g.refusals.respond(SESSION_ENDED, self.request.view, clear=clear)
        return status, keep_out_of_shared_caches(headers) if clear is not None else headers, body

    def token_refused_response(self) -> Answer:
        challenge = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        return self.g.refusals.respond(TOKEN_INVALID, self.request.view, headers=challenge)

    def undecodable_response(self) -> Answer:
        """A login body fixguard could not decode: refused whole, never passed on with the app's token.

        The login has rotated (the old ID is dead); the client starts over with no session.
        """
        body = b"The server's answer to this sign-in could not be processed. Please try again.\n"
        headers = keep_out_of_shared_caches([*plain(body), ("Set-Cookie", self.g.writer.clear)])
        return "502 Bad Gateway", headers, body

    def conflict_response(self) -> Answer:
        return self.g.refusals.respond(SESSION_CHANGED, self.request.view)

    def store_down(self, exc: StoreError) -> Answer:
        self.emit("store_unavailable", reason=str(exc)[:200] or type(exc).__name__)
        return self.g.refusals.respond(STORE_UNAVAILABLE, self.request.view, headers=[("Retry-After", "5")])

    # -- events ------------------------------------------------------------------------

    def emit(self, kind: str, **detail: Any) -> None:
        self.g.events.emit(
            Event(
                kind,
                self.vid.fingerprint if self.vid is not None else None,
                self.method,
                self.path,
                self.request.remote_addr,
                detail,
            )
        )


def plain(body: bytes) -> Headers:
    """Headers of a short plain-text answer fixguard writes itself."""
    return [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]


def cap_subject(subject: object) -> str | None:
    """A subject as stored: text, at most 256 characters, None when empty."""
    return str(subject)[:MAX_SUBJECT] or None if subject is not None else None


def detectable(content_type: str | None) -> bool:
    """A body type credential detection reads: a form, multipart, or JSON."""
    return bool(content_type) and _DETECTABLE.match(content_type or "") is not None
