"""FixGuard: the WSGI middleware that makes session fixation impossible for the app it wraps.

What it trusts: its own signed, server-side-recorded ID and nothing else the
client says about sessions. The app's session cookies (``app_cookies``) live
in a server-side jar; the client only ever holds fixguard's ID. Any client
copy of an app cookie is dropped before the app runs, and the header the app
sees is rebuilt from pairs every common parser reads alike.

Request phase: verify the ID, look the record up (one store call), freeze it
first if the request matches a login/elevate rule, put the jar's cookies into
``HTTP_COOKIE``. Response phase (in ``start_response``): read the status and
the app's signals, capture its Set-Cookie for app cookies into the jar, and
rotate, retire, unfreeze, update or create the record; then send fixguard's
hardened cookie. A request whose store does not answer gets a 503: fail closed.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .caching import keep_out_of_shared_caches
from .config import DEFAULT_CREDENTIAL_FIELDS, Settings
from .cookies import (
    CookieWriter,
    Jar,
    RequestCookieFilter,
    SetCookie,
    harden,
    jar_pairs,
    parse_set_cookie,
)
from .detect import BODY_METHODS, authorization_user, carries_credentials, field_names, may_carry, read_body
from .encoding import Undecodable, content_codings, identity_headers
from .encoding import decode as decode_body
from .events import Event, EventSink
from .ids import IDAuthority, VerifiedID
from .record import (
    ALIAS,
    CHAIN,
    FORWARDING,
    LIVE,
    NO_SESSION,
    RENEWED,
    RETIRED,
    ROTATING,
    SNAPSHOT,
    CorruptRecord,
    Record,
    SessionInfo,
    decode,
    encode,
    guard_of,
    live_info,
    tombstone,
)
from .responses import SESSION_CHANGED, SESSION_ENDED, STORE_UNAVAILABLE, TOKEN_INVALID, Refusals
from .secrecy import Sealed
from .signals import (
    ENVIRON_CONTEXT,
    ENVIRON_SIGNALS,
    ENVIRON_SUBJECT,
    Rule,
    RuleSet,
    location_path,
    normalize_path,
    parse_event_header,
)
from .signals import (
    ROTATING as ROTATING_SIGNALS,
)
from .stores.base import MAX_HOPS, Handover, Outcome, Store, StoreError
from .stores.memory import MemoryStore
from .tokens import TOKEN_PREFIX, dump_json, extract, is_json, load_json, parse_authorization, parse_paths
from .tokens import replace as replace_tokens

if TYPE_CHECKING:
    from collections.abc import Mapping
    from os import PathLike

    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .responses import HookAnswer, Rejection

Headers = list[tuple[str, str]]

ENVIRON_SESSION = "fixguard.session"
SLIDE_FRACTION = 0.1  # slide the idle TTL at most once per this fraction of idle_timeout
_MAX_SUBJECT = 256
_WATCHED = frozenset(("set-cookie", "fixguard-event", "fixguard-subject"))
_DETECTABLE = re.compile(
    r"^\s*(?:application/x-www-form-urlencoded|multipart/form-data|application/(?:[\w.+-]+\+)?json)\s*(?:;|$)",
    re.IGNORECASE,
)
#: Tombstones whose ID the same browser may still send in parallel for a moment.
_QUIET_REASONS = frozenset(("login", "elevate", "logout"))
_LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
_INSECURE_HINT = (
    "fixguard sent its Secure cookie in answer to a plain-http request: browsers drop it, so every "
    "login will seem to fail. For plain-http development pass secure=False (FIXGUARD_SECURE=false); "
    "behind a TLS proxy, make wsgi.url_scheme say https (e.g. werkzeug's ProxyFix *inside* FixGuard: "
    "FixGuard(ProxyFix(app, x_proto=1), ...))"
)
_UNVAULTED_HINT = (
    "the app set {0!r}, which looks like a session cookie, but it is not in app_cookies: it went to "
    "the client unprotected. Add it to app_cookies (FIXGUARD_APP_COOKIES)"
)
#: Session cookie names of common frameworks and servers, lower case.
_SESSION_NAMES = frozenset(
    (
        "phpsessid", "jsessionid", "connect.sid", "sessionid", "asp.net_sessionid", "_session_id",
        "rack.session", "laravel_session", "beaker.session.id", "cfid", "cftoken", "sid",
        "aspsessionid", "express.sid", "koa.sess", "_csrf_session",
    )
)  # fmt: skip


def looks_like_session_cookie(name: str) -> bool:
    """``sid``, anything containing ``sess``, or a well-known session cookie name."""
    lowered = name.lower()
    return "sess" in lowered or lowered in _SESSION_NAMES or lowered.endswith(("_sid", ".sid", "-sid"))


def host_of(environ: Mapping[str, Any]) -> str:
    """The request's host name, without port or IPv6 brackets, lower case."""
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class FixGuard:
    """Wrap a WSGI app so that every login hands the client a fresh, server-minted session ID.

    :param app: the WSGI application to protect.
    :param secret_key: at least 32 random bytes; signs IDs and keys the store hash.
    :param fallback_keys: older keys, accepted for verification only (key rotation).
    :param store: where records live; :class:`MemoryStore` (one process) by default.
    :param app_cookies: the app's own session cookies, kept server-side, never sent to the client.
    :param login: rules (``"POST /login"``, ``"POST /login 302"``, globs in paths) that mark a login.
    :param logout: rules that end the session.
    :param elevate: rules for a privilege change (MFA, role raised): rotate again.
    :param cookie_name: defaults to ``__Host-fixguard`` when secure, else ``fixguard``.
    :param secure: send the cookie with ``Secure`` (``False`` only for plain-http development).
    :param samesite: ``"Lax"`` (default), ``"Strict"`` or ``"None"``.
    :param idle_timeout: seconds without a request before a session ends.
    :param absolute_timeout: seconds after which a session ends whatever happens.
    :param on_fixation: ``"reject"`` (401) or ``"strip"`` (anonymous) for a retired ID.
    :param on_event: callable receiving each :class:`~fixguard.events.Event`.
    :param settle_time: seconds a login waits after freezing before the app runs; slower
        requests on the same session re-check their record before answering.
    :param harden_cookies: also add HttpOnly/Secure/SameSite to the app's other cookies.
    :param script_cookies: cookies exempt from HttpOnly when hardening (scripts read them).
    :param max_cookie_header: longer Cookie headers are dropped whole (bounded work).
    :param max_cookies: more cookies than this in one header are dropped whole.
    :param renew_after: renew an authenticated ID older than this many seconds (None: never).
    :param renew_grace: seconds the previous ID keeps working after a renewal, so parallel
        requests are not lost; each is told the newest ID.
    :param token_fields: dotted JSON paths of the tokens in login/elevate responses; each is
        swapped for a fixguard token, and ``Authorization: Bearer`` is translated back.
    :param token_passthrough: rules (``"GET /public/*"``) where foreign bearer tokens reach the app.
    :param max_token_body: login bodies larger than this pass untouched (with an event).
    :param detect_logins: treat a request carrying credentials (Basic/Digest for another user,
        or a form/JSON body with a password-like field) like one matching a login rule.
    :param credential_fields: field-name fragments that mark a body as carrying credentials.
    :param max_detect_body: larger bodies pass uninspected.
    :param redis_url: a Redis URL: the store is ``RedisStore.from_url(redis_url)`` (not with ``store``).
    :param redis_prefix: the key prefix of that RedisStore (``"fixguard:"``).
    :param reject_redirect: send a browser presenting an ended session here (303) instead of a 401.
    :param on_reject: ``callable(rejection)`` returning ``(status, headers, body)`` (or None for the
        default) for every refusal: 401, 409, 503. See :mod:`fixguard.responses`.
    :param cookie_max_age: seconds fixguard's cookie persists in the browser (never beyond the
        session's absolute timeout); None, the default, is a browser-session cookie.
    """

    def __init__(
        self,
        app: WSGIApplication,
        secret_key: str | bytes | None = None,
        *,
        fallback_keys: Iterable[str | bytes] = (),
        store: Store | None = None,
        app_cookies: Iterable[str] | str = ("session",),
        login: Iterable[str] | str = ("POST /login",),
        logout: Iterable[str] | str = ("POST /logout",),
        elevate: Iterable[str] | str = (),
        cookie_name: str | None = None,
        secure: bool = True,
        samesite: str = "Lax",
        idle_timeout: float = 1800,
        absolute_timeout: float = 43200,
        on_fixation: str = "reject",
        on_event: Callable[[Event], None] | None = None,
        settle_time: float = 0.02,
        harden_cookies: bool = False,
        script_cookies: Iterable[str] | str = (),
        max_cookie_header: int = 16384,
        max_cookies: int = 128,
        renew_after: float | None = None,
        renew_grace: float = 30,
        token_fields: Iterable[str] | str = (),
        token_passthrough: Iterable[str] | str = (),
        max_token_body: int = 1024 * 1024,
        detect_logins: bool = True,
        credential_fields: Iterable[str] | str = DEFAULT_CREDENTIAL_FIELDS,
        max_detect_body: int = 65536,
        redis_url: str | None = None,
        redis_prefix: str | None = None,
        reject_redirect: str | None = None,
        on_reject: Callable[[Rejection], HookAnswer] | None = None,
        cookie_max_age: float | None = None,
    ) -> None:
        if isinstance(app, FixGuard):
            from .config import ConfigError

            raise ConfigError(
                "this app is already wrapped by FixGuard: wrap it once (two guards would each "
                "treat the other's cookie as foreign and break every login)"
            )
        self.app = app
        self.settings = s = Settings.build(
            secret_key=secret_key,
            fallback_keys=fallback_keys,
            app_cookies=app_cookies,
            login=login,
            logout=logout,
            elevate=elevate,
            cookie_name=cookie_name,
            secure=secure,
            samesite=samesite,
            idle_timeout=idle_timeout,
            absolute_timeout=absolute_timeout,
            on_fixation=on_fixation,
            on_event=on_event,
            settle_time=settle_time,
            harden_cookies=harden_cookies,
            script_cookies=script_cookies,
            max_cookie_header=max_cookie_header,
            max_cookies=max_cookies,
            renew_after=renew_after,
            renew_grace=renew_grace,
            token_fields=token_fields,
            token_passthrough=token_passthrough,
            max_token_body=max_token_body,
            detect_logins=detect_logins,
            credential_fields=credential_fields,
            max_detect_body=max_detect_body,
            reject_redirect=reject_redirect,
            on_reject=on_reject,
            cookie_max_age=cookie_max_age,
        )
        if redis_url is not None or redis_prefix is not None:
            store = _store_from_url(store, redis_url, redis_prefix)
        if store is None:
            store = MemoryStore()
        elif not isinstance(store, Store):
            from .config import ConfigError

            raise ConfigError(
                f"store must implement fixguard's Store protocol (MemoryStore, RedisStore), "
                f"got {type(store).__name__}"
            )
        self.store: Store = store
        self.ids = IDAuthority(s.secret_key, s.fallback_keys)
        self.cookie_filter = RequestCookieFilter(
            s.cookie_name, s.app_cookies, s.max_cookie_header, s.max_cookies
        )
        self.writer = CookieWriter(s.cookie_name, s.secure, s.samesite, s.cookie_max_age)
        self.refusals = Refusals(s.reject_redirect, s.on_reject, (s.cookie_name, *s.app_cookies))
        self.rules = RuleSet((*s.login, *s.logout, *s.elevate))
        self.events = EventSink(on_event)
        self.app_cookie_names = frozenset(s.app_cookies)
        self.script_cookie_names = frozenset(s.script_cookies)
        self.slide_after = s.idle_timeout * SLIDE_FRACTION
        self.token_paths = parse_paths(s.token_fields)
        self.passthrough = RuleSet(s.token_passthrough)
        # misconfiguration warnings fire once per process and name
        self.warned_cookies: set[str] = set()
        self.warned_hosts: set[str] = set()

    @classmethod
    def from_env(
        cls, app: WSGIApplication, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> FixGuard:
        """A FixGuard configured by ``FIXGUARD_*`` variables (``os.environ`` by default).

        If ``FIXGUARD_CONFIG`` names a TOML file, it is read first and the
        variables override it; ``FIXGUARD_REDIS_URL`` selects a RedisStore.
        Keyword ``overrides`` (``on_event=``, ``store=``…) win over both. See
        :func:`fixguard.config.read_deployment`.
        """
        from .config import build_guard, read_deployment

        return build_guard(cls, app, read_deployment(environ), overrides)

    @classmethod
    def from_file(cls, app: WSGIApplication, path: str | PathLike[str], **overrides: Any) -> FixGuard:
        """A FixGuard configured by the ``[fixguard]`` table of a TOML file; ``overrides`` win.

        Only the file is read, not the environment. See :func:`fixguard.config.read_file`.
        """
        from .config import build_guard, read_file

        return build_guard(cls, app, read_file(path), overrides)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        outer = environ.get(ENVIRON_CONTEXT)
        if outer is not None and getattr(outer, "active", False):
            if getattr(outer, "g", None) is self:
                # an in-process sub-request reusing this request's environ: the outer call
                # already rebuilt its cookies and will answer for the session
                inner: Iterable[bytes] = self.app(environ, start_response)
                return inner
            return self.installed_twice(environ, start_response)
        return _Exchange(self, environ, start_response).run()

    def installed_twice(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Another FixGuard already handles this request: refuse loudly, never half-protect.

        Two guards in a row each see the other's cookie as foreign: logins
        would rotate one of them only, and the app's session would silently
        break or stay under an ID the outer guard never rotated.
        """
        self.events.emit(
            Event(
                "installed_twice",
                None,
                str(environ.get("REQUEST_METHOD", "")),
                str(environ.get("PATH_INFO", "")),
                str(environ.get("REMOTE_ADDR", "")),
                {"hint": "fixguard is installed twice (e.g. the gunicorn hook around an app that wraps "
                 "itself): keep one of the two"},
            )
        )
        body = b"Server misconfiguration: fixguard is installed twice. See the server log.\n"
        start_response("500 Internal Server Error", _plain(body))
        return [body]

    # -- helpers shared by exchanges ------------------------------------------------

    def live_ttl(self, record: Record, now: float) -> float:
        """Seconds a live record may still live: the idle window, capped by the absolute end."""
        s = self.settings
        return min(s.idle_timeout - (now - record.touched), record.created + s.absolute_timeout - now)

    def burn_key(self, token: str) -> str:
        """Where a burned foreign token's tombstone lives: a keyed hash, like session IDs."""
        return self.ids.key_for("burn:" + token)

    def tomb_ttl(self, created: float | None, now: float) -> float:
        """A tombstone lasts as long as the session it replaces could have lived."""
        s = self.settings
        if created is None:
            return s.absolute_timeout
        return max(0.001, created + s.absolute_timeout - now)


class _Exchange:
    """One request/response pair: all per-request state, nothing shared.

    Defaults live on the class, so a request that needs none of them (most
    requests) pays only for what it sets. The two that name store keys are
    slots instead: error reporters that walk ``vars()`` of what a frame holds
    do not see them.
    """

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
    pending: _Pending | None = None  # a login response held back to swap its tokens
    processed = False
    rotating = False  # a login/elevate rule matched (or credentials were seen): freeze first
    head: Record | None = None  # the record at ``head_key``, as read (live)
    from_snapshot = False  # the client named an older ID: ``record`` is its snapshot
    outcome_fingerprint: str | None = None
    replacement: tuple[str, Headers, bytes] | None = None
    now = 0.0  # wall-clock time the session was read
    active = True  # this call is in flight: a second guard meeting it is a misconfiguration
    quiet = False  # a recently retired ID: refuse, but never touch the client's cookie
    detected = ""  # credentials seen in the request: "body", or "basic" (a login if another user)
    basic_user = ""  # keyed hash of the Basic/Digest username
    via = ""  # what raised the rotating signal: rule, credentials, call or header

    def __init__(self, guard: FixGuard, environ: WSGIEnvironment, start_response: StartResponse):
        self.g = guard
        self.head_key = self.value = ""
        self.environ = environ
        self.server_start_response = start_response
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        self.path: str = environ.get("PATH_INFO", "") or "/"
        self.rules: list[Rule] = guard.rules.match(self.method, self.path)
        if self.rules:
            self.rotating = any(r.signal in ROTATING_SIGNALS for r in self.rules)
        self.outcome: Headers = []

    # -- request phase ---------------------------------------------------------------

    def run(self) -> Iterable[bytes]:
        """The request phase, then the app.

        Everything that reads the client's cookie and token happens in
        :meth:`prepare`, whose frame has returned before the app runs: an app
        exception unwinds only through this frame, whose locals hold no secret
        (error reporters record them).
        """
        refusal = self.prepare()
        if refusal is not None:
            return refusal
        # a login waits for replays already inside the app; an empty session has nothing to ride on
        record = self.record
        riders = record is not None and bool(record.jar or record.bearer)
        if self.freeze_token and self.g.settings.settle_time > 0 and riders:
            time.sleep(self.g.settings.settle_time)
        try:
            app_iter = self.g.app(self.environ, self.start_response)
        except BaseException:
            self.active = False
            self.abandon()
            raise
        if self.processed and self.replacement is None and self.pending is None:
            self.active = False
            return app_iter
        return _Body(self, app_iter)

    def prepare(self) -> Iterable[bytes] | None:
        """Verify the ID, load the session, rebuild the app's environ; a refusal, or None to go on."""
        g, environ = self.g, self.environ
        raw = environ.get("HTTP_COOKIE")
        kept: list[str] = []
        if raw:
            inbound = g.cookie_filter.split(raw)
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
        if g.token_paths and "HTTP_AUTHORIZATION" in environ:
            self.bearer_in()
        if g.settings.detect_logins and not self.rules and not self.via_token:
            self.detect()  # a matching rule decides alone; a fixguard token's holder is logged in
        try:
            if self.vid is not None:
                self.load()
            if self.detected == "basic":
                self.basic_login()
            if self.foreign_burn and self.burned(self.foreign_burn):
                return self.refuse_now(self.token_refused_response())
        except StoreError as exc:
            return self.refuse_now(self.store_down(exc))
        if self.retired_seen is not None and g.settings.on_fixation == "reject":
            return self.refuse_now(self.fixation_response())
        if self.token_slot >= 0 and self.record is not None:
            bearer = self.record.bearer
            if self.token_slot < len(bearer) and bearer[self.token_slot]:
                environ["HTTP_AUTHORIZATION"] = "Bearer " + bearer[self.token_slot]

        record = self.record
        if record is not None and record.jar:
            pairs = jar_pairs(record.jar, self.full_path(), self.now)
            kept = kept + pairs if kept else pairs
        if kept:
            environ["HTTP_COOKIE"] = "; ".join(kept)
        else:
            environ.pop("HTTP_COOKIE", None)
        environ[ENVIRON_SESSION] = self.info()
        environ[ENVIRON_CONTEXT] = self
        if self.rotating and g.token_paths:
            # a login/elevate: its tokens must come back in a body fixguard can read
            environ.pop("HTTP_ACCEPT_ENCODING", None)
        return None

    def detect(self) -> None:
        """Credentials in the request make it a login, known before the app runs (like a rule).

        A body with a password-like field freezes the session at once. Basic
        or Digest credentials are a login only for a session not already
        authenticated as that user: decided once the record is read.
        """
        g, environ, s = self.g, self.environ, self.g.settings
        auth = environ.get("HTTP_AUTHORIZATION")
        if auth:
            user = authorization_user(auth)
            if user is not None:
                self.basic_user = g.ids.key_for("basic-user:" + user)[:24]
                self.detected = "basic"
                return
        if self.method not in BODY_METHODS or not s.credential_fields:
            return
        content_type = environ.get("CONTENT_TYPE")
        if not content_type or not _DETECTABLE.match(content_type):
            return  # no body worth reading: a GET, an upload of another type
        body = read_body(environ, s.max_detect_body)
        if not body or not may_carry(body, s.credential_fields):
            return
        names = field_names(content_type, body, s.max_detect_body)
        if carries_credentials(names, s.credential_fields):
            self.detected = "body"
            self.rotating = True

    def basic_login(self) -> None:
        """Basic/Digest credentials: a login unless the session is already that user's."""
        record = self.record
        if record is not None and record.authenticated is not None and record.basic == self.basic_user:
            self.detected = ""  # the browser re-sends the same user's credentials: nothing new
            return
        self.rotating = True
        if record is None or self.from_snapshot or not self.head_key:
            return  # no live head of our own to freeze (none, retired, frozen elsewhere)
        token = secrets.token_hex(8)
        value = self.g.store.freeze(self.head_key, token)
        if value is None or guard_of(value) != self.read_guard:
            # changed since we read it: run as a login without a session to carry over
            self.record = self.head = None
            self.head_key = ""
            self.frozen_elsewhere = value is not None and guard_of(value)[1:2] == ROTATING
            return
        self.freeze_token = token
        self.read_guard = self.read_guard[:1] + ROTATING + token
        self.read_at = time.monotonic()

    def bearer_in(self) -> None:
        """Take the Authorization header apart: ours is verified, anything else discarded.

        A fixguard token names the session (it wins over the cookie). A foreign
        bearer token never reaches the app, except on ``token_passthrough``
        paths; it is remembered so a login can burn it.
        """
        g, environ = self.g, self.environ
        bearer = parse_authorization(environ["HTTP_AUTHORIZATION"])
        if bearer.token is None and not bearer.garbled:
            return  # another scheme (Basic, ...): not ours to touch
        token = bearer.token
        if token is not None and not bearer.ours and g.passthrough.match(self.method, self.path):
            self.foreign_burn = g.burn_key(token)
            return
        del environ["HTTP_AUTHORIZATION"]
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

    def burned(self, burn_key: str) -> bool:
        """Was this foreign token presented on a login? Then it is refused from now on."""
        value = self.g.store.get(burn_key)
        if value is None or guard_of(value)[1:2] != RETIRED:
            return False
        self.emit("token_blocked")
        return True

    def load(self) -> None:
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
        value = g.store.freeze(key, token) if token else g.store.get(key)
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
            value = g.store.freeze(key, token) if token else g.store.get(key)
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
            g.store.delete(key)
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

    def info(self) -> SessionInfo:
        record, vid = self.record, self.vid
        if self.frozen_elsewhere and vid is not None:
            return SessionInfo(state="frozen", id_hash=vid.fingerprint)
        if record is None or vid is None:
            return NO_SESSION
        return live_info(self.value, vid.key[:12])

    def full_path(self) -> str:
        return (self.environ.get("SCRIPT_NAME", "") or "") + self.path

    # -- response phase --------------------------------------------------------------

    def start_response(
        self, status: str, headers: Headers, exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if self.processed:
            if exc_info is None:
                raise AssertionError("start_response called twice without exc_info")
            if self.replacement is not None:
                rstatus, rheaders, _ = self.replacement
                return self.server_start_response(rstatus, rheaders, exc_info)
            kept, _, _, _ = self.scan(headers)
            return self.server_start_response(status, kept + self.sent_outcome(), exc_info)
        self.processed = True
        out: Headers | None = None
        try:
            out = self.respond(status, headers, exc_info)
        except StoreError as exc:
            self.replacement = self.store_down(exc)
        if self.replacement is not None:
            rstatus, rheaders, _ = self.replacement
            self.server_start_response(rstatus, rheaders, exc_info)
            return _discard
        if out is None:
            assert self.pending is not None
            return self.pending.chunks.append  # held back until the body is read
        write = self.server_start_response(status, out, exc_info)
        if self.outcome:
            self.seal_outcome()
        return write

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

    def scan(self, headers: Headers) -> tuple[Headers, list[SetCookie], list[str], str | None]:
        """Split the app's headers into what may leave, jar updates, signals and subject."""
        g = self.g
        for name, _ in headers:
            if name.lower() in _WATCHED:
                break
        else:
            return headers, [], [], None  # most responses: nothing of ours, nothing to copy
        out: Headers = []
        updates: list[SetCookie] = []
        signals: list[str] = []
        subject: str | None = None
        harden_on = g.settings.harden_cookies
        for name, value in headers:
            lname = name.lower()
            if lname == "set-cookie":
                cname = value.partition("=")[0].strip(" \t")
                if cname in g.app_cookie_names:
                    update = parse_set_cookie(value, self.full_path())
                    if update is not None:
                        updates.append(update)
                    continue
                if cname == g.settings.cookie_name:
                    continue  # only fixguard sets fixguard's cookie
                if cname not in g.warned_cookies and looks_like_session_cookie(cname):
                    g.warned_cookies.add(cname)
                    self.emit("unvaulted_cookie", cookie=cname, hint=_UNVAULTED_HINT.format(cname))
                if harden_on:
                    s = g.settings
                    value = harden(value, s.secure, s.samesite, cname not in g.script_cookie_names)
            elif lname == "fixguard-event":
                signals.extend(parse_event_header(value))
                continue
            elif lname == "fixguard-subject":
                subject = value.strip()
                continue
            out.append((name, value))
        return out, updates, signals, subject

    def respond(self, status: str, headers: Headers, exc_info: OptExcInfo | None = None) -> Headers | None:
        """Decide what the response means; None when it is held back for its tokens."""
        environ = self.environ
        try:
            code = int(status[:3])
        except ValueError:
            code = 500
        out, updates, signals, subject = self.scan(headers)
        race_checked = False
        if not (updates or signals or self.rules or self.detected) and ENVIRON_SIGNALS not in environ:
            # Nothing set, no signal: the two common requests decide almost nothing.
            record = self.record
            if self.vid is None and not self.clear_cookie:
                return out  # no session
            if record is not None and self.reissue is None and not (self.freeze_token or self.clear_cookie):
                if self.raced():  # a read-only session: only the race, the slide and renewal matter
                    self.replacement = self.conflict_response()
                    return out
                race_checked = True
                if self.from_snapshot:
                    return out  # an older ID is never slid nor renewed: it only serves its window
                now = self.now  # when the record was read: close enough to decide a lazy slide
                if now - record.touched <= self.g.slide_after and not self.renewal_due(record, now):
                    return out
        header_signals = bool(signals)
        called = list(environ.get(ENVIRON_SIGNALS, ()))
        signals.extend(called)
        subject = environ.get(ENVIRON_SUBJECT) or subject
        if subject is not None:
            subject = str(subject)[:_MAX_SUBJECT] or None
        location = None
        if self.rules or self.detected:
            location = next((v for k, v in out if k.lower() == "location"), None)
        counted = [r.signal for r in self.rules if r.counts(code, location, self.path)]
        if self.detected and self.rotating and self.detected_success(code, location):
            counted.append("login")
            self.via = "credentials"
        if counted and not self.via:
            self.via = "rule"
        if not self.via:
            self.via = "call" if ROTATING_SIGNALS.intersection(called) else "header" if header_signals else ""
        signals.extend(counted)

        if not race_checked and self.record is not None and not self.freeze_token and self.raced():
            self.replacement = self.conflict_response()
            return out
        if self.g.token_paths and "logout" not in signals and ROTATING_SIGNALS.intersection(signals):
            content_type = next((v for k, v in out if k.lower() == "content-type"), None)
            if is_json(content_type) and self.method != "HEAD" and code not in (204, 304):
                self.pending = _Pending(status, out, updates, signals, subject, exc_info)
                return None
            self.emit("token_body_skipped", reason="not JSON")
        return self.commit(out, updates, signals, subject)

    def detected_success(self, code: int, location: str | None) -> bool:
        """A detected login succeeded: below 400, except a redirect back to the form it posted."""
        if code >= 400:
            return False
        if 300 <= code < 400 and location:
            return location_path(location, self.path) != normalize_path(self.path)
        return True

    def commit(
        self,
        out: Headers,
        updates: list[SetCookie],
        signals: list[str],
        subject: str | None,
        app_tokens: list[str] | None = None,
    ) -> Headers:
        """Rotate, retire, unfreeze, update or create the record; the headers that leave."""
        g = self.g
        now = time.time()
        if "logout" in signals:
            if self.frozen_elsewhere:
                return out
            self.logout(now, updates)
        elif "login" in signals or "elevate" in signals:
            kind = "login" if "login" in signals else "elevate"
            self.rotate(kind, now, updates, subject, app_tokens)
        elif self.frozen_elsewhere:
            return out  # inert: neither sets nor clears the cookie, stores nothing
        elif self.freeze_token:
            self.failed_login(now, updates)
        elif self.record is not None:
            if self.from_snapshot:
                self.branch(now, updates)
            elif self.renewal_due(self.record, now):
                self.renew(now, updates)
            else:
                self.update(now, updates)
        elif updates and not self.quiet:  # quiet: a late parallel request gets no new session
            jar = _apply({}, updates, now)
            if jar:
                self.create(now, jar, authenticated=None, subject=None, created=now)
                self.emit("session_created", new=self.outcome_fingerprint)
        if self.reissue is not None and not self.outcome and self.record is not None:
            end = self.record.created + g.settings.absolute_timeout
            self.outcome.append(("Set-Cookie", g.writer.set(self.reissue.open(), end)))
        if self.clear_cookie and not self.outcome:
            self.outcome.append(("Set-Cookie", g.writer.clear))
        if self.outcome:
            # a copy: ``out`` may be the app's own list, and apps reuse header lists
            out = keep_out_of_shared_caches(list(out))
            out.extend(self.outcome)
            plain_http = self.environ.get("wsgi.url_scheme") == "http"
            if plain_http and g.settings.secure and self.outcome_fingerprint:
                self.insecure_transport()
        return out

    def insecure_transport(self) -> None:
        """A ``Secure`` cookie sent over plain http to a real host: the browser drops it. Say so once."""
        host = host_of(self.environ)
        if host in _LOCAL_HOSTS or host in self.g.warned_hosts:
            return
        self.g.warned_hosts.add(host)
        self.emit("insecure_transport", host=host, hint=_INSECURE_HINT)

    def raced(self) -> bool:
        """Did this request take long enough that a login may have frozen its session meanwhile?

        A head that a parallel write or renewal moved on (snapshot, renewed) is
        no race as long as the chain still leads to a live head.
        """
        if time.monotonic() - self.read_at <= self.g.settings.settle_time:
            return False
        store = self.g.store
        current = store.get(self.head_key)
        if current is not None and guard_of(current) == self.read_guard:
            return False
        for _ in range(MAX_HOPS):
            try:
                record = decode(current) if current is not None else None
            except CorruptRecord:
                record = None
            if record is None or record.state not in (SNAPSHOT, RENEWED) or not record.next:
                break
            current = store.get(record.next)
            if current is not None and guard_of(current)[1:2] == LIVE:
                return False
        self.emit("race_blocked")
        return True

    def rotate(
        self,
        kind: str,
        now: float,
        updates: list[SetCookie],
        subject: str | None,
        app_tokens: list[str] | None = None,
    ) -> None:
        """Login or elevate: a fresh ID for the session, and the chain it came from ends."""
        g, old = self.g, self.record
        base = old.jar if old is not None else {}
        jar = _apply(base, updates, now)
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
        outcome = g.store.handover(
            Handover(
                new.key,
                encode(fresh),
                g.live_ttl(fresh, now),
                old_key=old_key,
                old_value=encode(tomb),
                old_ttl=g.tomb_ttl(old_created, now),
                force=True,
                subject=subject or "",
                subject_ttl=g.settings.absolute_timeout,
            )
        )
        if not self.landed(outcome, new.key, encode(fresh)):
            return
        if kind == "elevate" and self.head is not None and _retired(outcome.old):
            # revoked while the elevation ran: the elevated session must not outlive the revoke
            g.store.retire(new.key, encode(tomb), g.tomb_ttl(created, now))
            self.emit("write_lost", reason="session revoked during elevate")
            self.clear_cookie = True
            return
        self.hand_out(new, signed, created)
        if chain:
            g.store.create(chain, encode(Record(CHAIN, now, now, next=new.key)), g.settings.absolute_timeout)
        parent = chain or new.key
        self.minted = [self.alias(parent, slot, now) if t else "" for slot, t in enumerate(bearer)]
        if self.foreign_burn:
            burn = tombstone(now, now, "burned")
            g.store.retire(self.foreign_burn, encode(burn), g.settings.absolute_timeout)
        via = self.via or "rule"
        frozen_by_rule = via == "rule" and bool(self.freeze_token)
        self.emit("rotation", signal=kind, new=new.fingerprint, rule=frozen_by_rule, via=via)

    def landed(self, outcome: Outcome, key: str, value: str) -> bool:
        """Did the handover's new record really get stored (a replayed call counts), unrevoked?"""
        if outcome.created:
            return True
        current = self.g.store.get(key)
        if current == value:
            return True  # our own write, reported as "exists" by a replayed pipeline
        if current is not None and not _retired(current):
            raise StoreError("a fresh session key was already taken")
        self.emit("write_lost", reason="session revoked during the request")
        self.clear_cookie = True
        return False

    def hand_out(self, vid: VerifiedID, signed: str, created: float) -> None:
        """Queue the cookie for the session's new ID (a persistent one ends with the session)."""
        end = created + self.g.settings.absolute_timeout
        self.outcome.append(("Set-Cookie", self.g.writer.set(signed, end)))
        self.outcome_fingerprint = vid.fingerprint

    def logout(self, now: float, updates: list[SetCookie]) -> None:
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
            g.store.retire(key, encode(tomb), ttl)
        jar = _apply({}, updates, now)
        if jar:
            self.create(now, jar, authenticated=None, subject=None, created=now)
        else:
            self.outcome.append(("Set-Cookie", g.writer.clear))
        self.emit("logout")

    def failed_login(self, now: float, updates: list[SetCookie]) -> None:
        """A login that did not count: the session goes on, and what the app wrote gets a new ID.

        Never under the presented ID: a login that logged the user in and then
        failed (an error after ``login_user()``) must not leave the logged-in
        jar where the planted ID can reach it.
        """
        record, head = self.record, self.head
        assert record is not None and head is not None
        jar = _apply(record.jar, updates, now) if updates else record.jar
        changed = _values_differ(jar, record.jar)
        if changed and not self.from_snapshot:
            self.copy(now, jar)  # the frozen head becomes a snapshot of what it had
        else:
            thawed = replace(head, state=LIVE, token=self.freeze_token)
            if not self.g.store.replace(self.head_key, self.read_guard, encode(thawed), None):
                self.emit("write_lost", reason="record changed during login")
            if changed:
                self.copy(now, jar, branch=True)
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

    def renew(self, now: float, updates: list[SetCookie]) -> None:
        """Move the session to its derived successor; the old ID answers for a grace window.

        One handover: the successor is indexed and created, then the old record
        swapped to "renewed" by compare-and-set. Whoever sees "renewed" finds
        the successor already there; concurrent renewals agree on one ID; a
        revoke at any moment ends the successor too.
        """
        g, record, vid = self.g, self.record, self.vid
        assert record is not None and vid is not None
        jar = _apply(record.jar, updates, now) if updates else record.jar
        if _values_differ(jar, record.jar):
            self.copy(now, jar)  # a write mints a fresh ID anyway
            return
        succ, signed = g.ids.successor(vid.sid)
        fresh = replace(record, state=LIVE, token="", jar=jar, touched=now, issued=now, next="")
        old = replace(record, state=RENEWED, token="", jar=jar, touched=now, next=succ.key)
        grace = min(g.settings.renew_grace, max(0.001, g.live_ttl(record, now)))
        outcome = g.store.handover(
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
            )
        )
        if not outcome.swapped and (outcome.old or "")[1:2] != RENEWED:
            if outcome.created:
                g.store.delete(succ.key)
            self.emit("write_lost", reason="record changed before renewal")
            return
        if not outcome.created:
            current = g.store.get(succ.key)
            if current is None or _retired(current):
                self.emit("write_lost", reason="session revoked during renewal")
                self.clear_cookie = True
                return
        self.hand_out(succ, signed, record.created)
        self.emit("renewal", new=succ.fingerprint)

    def update(self, now: float, updates: list[SetCookie]) -> None:
        """A request on the newest ID: a jar change moves the session to a new ID; else maybe a slide."""
        record = self.record
        assert record is not None
        slide = now - record.touched > self.g.slide_after
        if not updates and not slide:
            return  # the common read-only request: nothing to compare, nothing to write
        jar = _apply(record.jar, updates, now) if updates else record.jar
        if _values_differ(jar, record.jar):
            self.copy(now, jar)
            return
        if not slide:
            return  # the same values re-sent (a fresh expiry, a default Path): no write
        fresh = replace(record, jar=jar, touched=now)
        ttl = self.g.live_ttl(fresh, now)
        if not self.g.store.replace(self.head_key, self.read_guard, encode(fresh), ttl):
            self.emit("write_lost", reason="record changed during request")

    def branch(self, now: float, updates: list[SetCookie]) -> None:
        """A request on an older ID (a snapshot): a write gets a new ID of its own, nothing else."""
        record = self.record
        assert record is not None
        if not updates:
            return
        jar = _apply(record.jar, updates, now)
        if _values_differ(jar, record.jar):
            self.copy(now, jar, branch=True)

    def copy(self, now: float, jar: Jar, branch: bool = False) -> None:
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
        outcome = g.store.handover(move)
        if not outcome.swapped and (outcome.old or "")[1:2] not in (SNAPSHOT, RENEWED):
            # frozen by a login, ended or expired meanwhile: this write must not survive it
            g.store.delete(new.key)
            self.emit("write_lost", reason="record changed during request")
            return
        if self.landed(outcome, new.key, encode(fresh)):
            self.hand_out(new, signed, fresh.created)

    def create(
        self,
        now: float,
        jar: Jar,
        authenticated: float | None,
        subject: str | None,
        created: float,
    ) -> str:
        """Store a new anonymous record under a fresh ID, queue its cookie; returns the store key."""
        g = self.g
        record = Record(LIVE, created, now, "", authenticated, subject, jar)
        ttl = g.live_ttl(record, now)
        for _ in range(3):
            vid, signed = g.ids.mint()
            if g.store.create(vid.key, encode(record), ttl):
                self.hand_out(vid, signed, created)
                return vid.key
        raise StoreError("could not create a session record under a fresh key")

    def alias(self, parent: str, slot: int, now: float) -> str:
        """A fixguard token standing for app token ``slot`` of session ``parent``.

        Its own key holds only a pointer, so retiring the session (logout,
        rotation, revoke) kills every token that leads to it, with no list to keep.
        """
        g = self.g
        record = Record(ALIAS, now, now, parent=parent, slot=slot)
        for _ in range(3):
            vid, signed = g.ids.mint()
            if g.store.create(vid.key, encode(record), g.settings.absolute_timeout):
                return TOKEN_PREFIX + signed
        raise StoreError("could not create a token under a fresh key")

    def finish(self, body: bytes | None) -> bytes:
        """The held-back login response: swap its tokens, rotate, then let it leave."""
        pending, self.pending = self.pending, None
        assert pending is not None
        document: Any = None
        app_tokens: list[str] | None = None
        codings = content_codings(pending.out)
        text, undecodable = body, ""
        if codings:  # read what the client would read: decoded, within the same bound
            try:
                text = decode_body(body, codings, self.g.settings.max_token_body)
            except Undecodable as exc:
                text, undecodable = None, str(exc)
        if undecodable:
            self.emit("token_body_refused", reason=undecodable, encoding=", ".join(codings)[:64])
        elif text is None:
            self.emit("token_body_skipped", reason="larger than max_token_body")
        else:
            try:
                document = load_json(text)
                app_tokens = extract(document, self.g.token_paths)
            except ValueError:
                self.emit("token_body_skipped", reason="not JSON")
        try:
            # an unreadable body still rotates: the app has logged someone in either way
            out = self.commit(pending.out, pending.updates, pending.signals, pending.subject, app_tokens)
        except StoreError as exc:
            self.replacement = self.store_down(exc)
        if undecodable and self.replacement is None:
            self.replacement = self.undecodable_response()
        if self.replacement is not None:
            rstatus, rheaders, rbody = self.replacement
            self.server_start_response(rstatus, rheaders, pending.exc_info)
            return rbody
        data = b"".join(pending.chunks) if body is None else body
        if app_tokens is not None and any(self.minted):
            replace_tokens(document, self.g.token_paths, self.minted)
            data = dump_json(document)
            if codings:
                out = identity_headers(out, len(data))
            else:
                out = [(k, str(len(data)) if k.lower() == "content-length" else v) for k, v in out]
        self.server_start_response(pending.status, out, pending.exc_info)
        self.seal_outcome()
        return data

    def abandon(self) -> None:
        """The app failed before answering: undo our freeze so the session is not lost."""
        if not self.freeze_token or (self.processed and self.pending is None):
            return
        self.pending = None
        self.processed = True
        try:
            self.failed_login(time.time(), [])
        except StoreError as exc:
            self.emit("store_unavailable", reason=type(exc).__name__)

    # -- refusals ----------------------------------------------------------------------

    def refuse_now(self, response: tuple[str, Headers, bytes]) -> Iterable[bytes]:
        self.processed = True
        status, headers, body = response
        self.server_start_response(status, headers)
        return [] if self.method == "HEAD" else [body]

    def fixation_response(self) -> tuple[str, Headers, bytes]:
        clear = None if self.quiet else self.g.writer.clear  # see load(): the new cookie may be there
        status, headers, body = self.g.refusals.respond(SESSION_ENDED, self.environ, clear=clear)
        return status, keep_out_of_shared_caches(headers) if clear is not None else headers, body

    def token_refused_response(self) -> tuple[str, Headers, bytes]:
        challenge = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        return self.g.refusals.respond(TOKEN_INVALID, self.environ, headers=challenge)

    def undecodable_response(self) -> tuple[str, Headers, bytes]:
        """A login body fixguard could not decode: refused whole, never passed on with the app's token.

        The login has rotated (the old ID is dead); the client starts over with no session.
        """
        body = b"The server's answer to this sign-in could not be processed. Please try again.\n"
        headers = keep_out_of_shared_caches([*_plain(body), ("Set-Cookie", self.g.writer.clear)])
        return "502 Bad Gateway", headers, body

    def conflict_response(self) -> tuple[str, Headers, bytes]:
        return self.g.refusals.respond(SESSION_CHANGED, self.environ)

    def store_down(self, exc: StoreError) -> tuple[str, Headers, bytes]:
        self.emit("store_unavailable", reason=str(exc)[:200] or type(exc).__name__)
        return self.g.refusals.respond(STORE_UNAVAILABLE, self.environ, headers=[("Retry-After", "5")])

    # -- events ------------------------------------------------------------------------

    def emit(self, kind: str, **detail: Any) -> None:
        self.g.events.emit(
            Event(
                kind,
                self.vid.fingerprint if self.vid is not None else None,
                self.method,
                self.path,
                self.environ.get("REMOTE_ADDR", ""),
                detail,
            )
        )


class _Body:
    """The app's body, guarded: replaced whole if start_response decided to refuse."""

    def __init__(self, exchange: _Exchange, app_iter: Iterable[bytes]) -> None:
        self.exchange = exchange
        self.app_iter = app_iter

    def __iter__(self) -> Iterator[bytes]:
        ex = self.exchange
        it = iter(self.app_iter)
        if ex.replacement is None:
            for chunk in it:
                if ex.replacement is not None:
                    break
                if ex.pending is not None:
                    yield from self.held_back(chunk, it)
                    return
                yield chunk
            else:
                if ex.pending is not None:
                    yield from self.held_back(b"", it)
                    return
        if ex.replacement is not None and ex.method != "HEAD":
            yield ex.replacement[2]

    def held_back(self, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
        """Read a login body whole (up to max_token_body), then send it rewritten."""
        ex = self.exchange
        assert ex.pending is not None
        chunks = ex.pending.chunks
        chunks.append(first)
        size, cap = sum(len(c) for c in chunks), ex.g.settings.max_token_body
        if size <= cap:
            for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    break
        whole = b"".join(chunks) if size <= cap else None
        data = ex.finish(whole)
        if ex.method != "HEAD":
            yield data
        if whole is None and ex.replacement is None:
            yield from rest

    def close(self) -> None:
        try:
            close = getattr(self.app_iter, "close", None)
            if close is not None:
                close()
        finally:
            self.exchange.active = False
            self.exchange.abandon()


@dataclass(slots=True)
class _Pending:
    """A login response held back until its body (and so its tokens) is known."""

    status: str
    out: Headers
    updates: list[SetCookie]
    signals: list[str]
    subject: str | None
    exc_info: OptExcInfo | None
    chunks: list[bytes] = field(default_factory=list)


def _discard(data: bytes) -> None:
    """write() for a response fixguard replaced: the app's bytes go nowhere."""


def _plain(body: bytes) -> Headers:
    return [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]


def _store_from_url(store: Store | None, url: str | None, prefix: str | None) -> Store | None:
    """``redis_url`` (and ``redis_prefix``) as Python keywords: the RedisStore they name."""
    from .config import ConfigError, make_store

    if store is not None:
        raise ConfigError("store= and redis_url= were both given: keep one")
    values: dict[str, str] = {}
    for name, value in (("redis_url", url), ("redis_prefix", prefix)):
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
            values[name] = value
    return make_store(values)


def _apply(jar: Jar, updates: list[SetCookie], now: float) -> Jar:
    """The jar after the app's Set-Cookie headers, with expired cookies dropped."""
    out = {name: c for name, c in jar.items() if c.live(now)}
    for update in updates:
        if update.cookie is None:
            out.pop(update.name, None)
        else:
            out[update.name] = update.cookie
    return out


def _retired(value: str | None) -> bool:
    """Is this stored value a tombstone?"""
    return value is not None and guard_of(value)[1:2] == RETIRED


def _values_differ(a: Jar, b: Jar) -> bool:
    """A change that is a write: a cookie set, changed or deleted.

    A re-send of the same value with other attributes (a fresh expiry, a
    default Path taken from the request path) is no write: apps that refresh
    their cookie on every response must not cost a new ID per request.
    """
    if a.keys() != b.keys():
        return True
    return any(a[name].value != b[name].value for name in a)
