"""The configuration both shells share: settings, and the parts built from them.

:class:`Guard` validates every keyword once (:meth:`Settings.build
<fixguard.config.Settings.build>`), builds the ID authority, cookie filter and
writer, rules and event sink, and picks the store. It does no I/O of its own
and imports no web framework: the WSGI and ASGI middlewares subclass it and
add how a request comes in and a response goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import DEFAULT_CREDENTIAL_FIELDS, ConfigError, Settings
from ..cookies import CookieWriter, RequestCookieFilter
from ..events import EventSink
from ..ids import IDAuthority
from ..record import Record
from ..responses import Refusals
from ..signals import RuleSet
from ..stores.base import Store
from ..stores.memory import MemoryStore
from ..tokens import parse_paths

if TYPE_CHECKING:
    from collections.abc import Mapping
    from os import PathLike

    from ..events import Event
    from ..responses import HookAnswer, Rejection

_G = TypeVar("_G", bound="Guard")
SLIDE_FRACTION = 0.1  # slide the idle TTL at most once per this fraction of idle_timeout


class Guard:
    """What both middlewares share: the settings and the parts built from them, once per app.

    The WSGI :class:`~fixguard.FixGuard` and the ASGI
    :class:`~fixguard.asgi.FixGuardMiddleware` are this class plus their I/O;
    both take exactly these keywords (and :meth:`from_env`, :meth:`from_file`).

    :param app: the application to protect (WSGI or ASGI, as the shell says).
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
    :param redis_cluster: ``redis_url`` names a node of a Redis Cluster.
    :param redis_sentinels: Sentinels as ``"host:port"``, watching ``redis_sentinel_master``.
    :param redis_sentinel_master: the master's name under Sentinel.
    :param redis_min_replicas: replicas that must acknowledge each write that kills an ID
        (default: 1 if the topology has replicas, else 0).
    :param redis_wait_timeout: seconds that acknowledgement may take (0.1); later is a 503.
    """

    def __init__(
        self,
        app: Any,
        secret_key: str | bytes | None = None,
        *,
        fallback_keys: Iterable[str | bytes] = (),
        store: Any = None,
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
        redis_cluster: bool | None = None,
        redis_sentinels: Iterable[str] | str | None = None,
        redis_sentinel_master: str | None = None,
        redis_min_replicas: int | None = None,
        redis_wait_timeout: float | None = None,
    ) -> None:
        self.check_app(app)
        self.app: Any = app
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
        redis = {
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "redis_cluster": redis_cluster,
            "redis_sentinels": redis_sentinels,
            "redis_sentinel_master": redis_sentinel_master,
            "redis_min_replicas": redis_min_replicas,
            "redis_wait_timeout": redis_wait_timeout,
        }
        if any(value is not None for value in redis.values()):
            store = self.store_from_settings(store, {n: v for n, v in redis.items() if v is not None})
        self.store: Any = self.checked_store(store)
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

    #: The shell awaits its store: ``redis_url`` makes an AsyncRedisStore, not a RedisStore.
    asynchronous = False

    def check_app(self, app: Any) -> None:
        """Refuse an app this shell cannot wrap (already wrapped, say): a clear start-up error."""

    def store_from_settings(self, store: Any, values: dict[str, Any]) -> Any:
        """The ``redis_*`` Python keywords: the Redis store they name (see :mod:`fixguard.redis_settings`)."""
        from ..config import make_store

        if store is not None:
            name = "redis_url" if "redis_url" in values else next(iter(values))
            raise ConfigError(f"store= and {name}= were both given: keep one")
        return make_store(values, self.asynchronous)

    def checked_store(self, store: Any) -> Any:
        """The store to use: ``store``, or a MemoryStore; anything else fails at start-up."""
        if store is None:
            return MemoryStore()
        if not isinstance(store, Store):
            raise ConfigError(
                f"store must implement fixguard's Store protocol (MemoryStore, RedisStore), "
                f"got {type(store).__name__}"
            )
        return store

    @classmethod
    def from_env(cls: type[_G], app: Any, environ: Mapping[str, str] | None = None, **overrides: Any) -> _G:
        """A guard configured by ``FIXGUARD_*`` variables (``os.environ`` by default).

        If ``FIXGUARD_CONFIG`` names a TOML file, it is read first and the
        variables override it; ``FIXGUARD_REDIS_URL`` selects a Redis store.
        Keyword ``overrides`` (``on_event=``, ``store=``…) win over both. See
        :func:`fixguard.config.read_deployment`.
        """
        from ..config import build_guard, read_deployment

        return build_guard(cls, app, read_deployment(environ), overrides)

    @classmethod
    def from_file(cls: type[_G], app: Any, path: str | PathLike[str], **overrides: Any) -> _G:
        """A guard configured by the ``[fixguard]`` table of a TOML file; ``overrides`` win.

        Only the file is read, not the environment. See :func:`fixguard.config.read_file`.
        """
        from ..config import build_guard, read_file

        return build_guard(cls, app, read_file(path), overrides)

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
