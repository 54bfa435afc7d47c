"""The WSGI app the gunicorn end-to-end test serves: ``tests.e2e_app:app``.

It is :mod:`examples.basic_auth_app` — its views unchanged, and just as
vulnerable — with one thing swapped so that it works under several worker
processes: the example keeps its server-side sessions in a module-level dict,
one per process, so with 3 gunicorn workers a login handled by one worker
would be invisible to the next. Here the same :class:`DictSessionInterface`
is handed a :class:`RedisSessions` mapping instead, kept in the test's Redis
under its own prefix. The session ID the app puts in its ``session`` cookie is
still kept across login, so the bare app is fixable across workers exactly as
the single-process example is.

Configuration, from the environment (the test sets it for gunicorn):

``FIXGUARD_E2E_REDIS_URL``
    the Redis shared by every worker (the test's own ``redis-server``).
``FIXGUARD_E2E_PREFIX``
    key prefix for this run; the app's sessions go under ``<prefix>app:``,
    fixguard's records under ``<prefix>fg:``.
``FIXGUARD_E2E_MODE``
    ``bare`` (the vulnerable app as it is) or ``protected`` (wrapped with the
    example's own ``protect()``: FixGuard with a :class:`RedisStore`).
``FIXGUARD_E2E_SECRET``
    fixguard's key, the same in every worker (``protected`` only).
``FIXGUARD_E2E_EVENTS``
    optional: a file that gets one JSON line per fixguard event, with the
    worker's PID.

Every response, fixguard's own refusals included, carries ``X-Worker-Pid``:
the PID of the worker that answered.

Spreading requests over workers: gunicorn's sync workers share one listening
socket and the kernel tends to hand sequential connections to the same one, so
the test cannot rely on luck. A request with ``X-E2E-Hold: <token>`` first
pushes its worker's PID to the Redis list ``<prefix>held:<token>`` and then
waits (at most 5 s) for an item on ``<prefix>release:<token>`` before it goes on
to fixguard and the app as usual. While it waits it keeps its worker busy, so
the test's next request is answered by another worker: with two requests held,
the third lands on the third worker, deterministically.

``app`` is built on first access (PEP 562), so importing this module has no
side effects; ``create_app()`` builds a new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import redis

from examples import basic_auth_app

#: Lifetime of an app-side session record in Redis: long enough for any test run,
#: short enough that an interrupted run leaves nothing behind for long.
APP_SESSION_TTL = 600

#: Longest a held request waits for its release.
HOLD_TIMEOUT = 5


class RedisSessions(MutableMapping[str, dict[str, Any]]):
    """The example's ``SESSIONS`` dict, kept in Redis so every worker shares it.

    Values are JSON objects under ``prefix + session ID``.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def __getitem__(self, sid: str) -> dict[str, Any]:
        raw = self.client.get(self.prefix + sid)
        if raw is None:
            raise KeyError(sid)
        value: dict[str, Any] = json.loads(raw)
        return value

    def __setitem__(self, sid: str, value: dict[str, Any]) -> None:
        self.client.set(self.prefix + sid, json.dumps(value), ex=APP_SESSION_TTL)

    def __delitem__(self, sid: str) -> None:
        if not self.client.delete(self.prefix + sid):
            raise KeyError(sid)

    def __contains__(self, sid: object) -> bool:
        return isinstance(sid, str) and bool(self.client.exists(self.prefix + sid))

    def __iter__(self) -> Iterator[str]:
        for key in self.client.scan_iter(match=self.prefix + "*"):
            text = key.decode() if isinstance(key, bytes) else key
            yield text[len(self.prefix) :]

    def __len__(self) -> int:
        return sum(1 for _ in self)


class WorkerPid:
    """Outermost WSGI layer: ``X-Worker-Pid`` on every response; ``X-E2E-Hold`` (see above)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], client: redis.Redis, prefix: str) -> None:
        self.app = app
        self.client = client
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = environ.get("HTTP_X_E2E_HOLD")
        if token:
            self.client.rpush(f"{self.prefix}held:{token}", os.getpid())
            self.client.blpop([f"{self.prefix}release:{token}"], timeout=HOLD_TIMEOUT)

        def with_pid(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], exc_info)

        return self.app(environ, with_pid)


def _event_logger(path: str) -> Callable[[Any], None]:
    def on_event(event: Any) -> None:
        line = json.dumps({"pid": os.getpid(), **event.as_dict()}, default=str) + "\n"
        with open(path, "a", encoding="utf-8") as log:  # one short O_APPEND write per event
            log.write(line)

    return on_event


def settings(default_prefix: str) -> tuple[str, str, str]:
    """``(redis URL, key prefix, mode)`` from the environment (see above)."""
    url = os.environ["FIXGUARD_E2E_REDIS_URL"]
    prefix = os.environ.get("FIXGUARD_E2E_PREFIX", default_prefix)
    mode = os.environ.get("FIXGUARD_E2E_MODE", "bare")
    if mode not in ("bare", "protected"):
        # an exception, not SystemExit: gunicorn then halts instead of respawning the worker
        raise ValueError(f"FIXGUARD_E2E_MODE must be 'bare' or 'protected', not {mode!r}")
    return url, prefix, mode


def redis_client(url: str) -> redis.Redis:
    """The app's own Redis client; its reads outlast a held request's wait."""
    return redis.Redis.from_url(url, socket_timeout=HOLD_TIMEOUT + 2, socket_connect_timeout=2)


def serve(
    flask_app: Any, protect: Callable[..., Any], *, mode: str, url: str, prefix: str, client: redis.Redis
) -> WorkerPid:
    """``flask_app``, in ``protected`` mode behind the example's ``protect()``, under :class:`WorkerPid`.

    fixguard gets ``FIXGUARD_E2E_SECRET``, plain-http cookies, a
    :class:`~fixguard.RedisStore` under ``<prefix>fg:``, and the event log.
    """
    from fixguard import RedisStore

    if mode == "protected":
        options: dict[str, Any] = {}
        events = os.environ.get("FIXGUARD_E2E_EVENTS")
        if events:
            options["on_event"] = _event_logger(events)
        protect(
            flask_app,
            secret_key=os.environ["FIXGUARD_E2E_SECRET"],
            secure=False,
            store=RedisStore.from_url(url, prefix=prefix + "fg:"),
            **options,
        )
    return WorkerPid(flask_app, client, prefix)


def lazy_app(create_app: Callable[[], WorkerPid]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``app``: ``create_app()``, once per process, on first access."""
    built: list[WorkerPid] = []

    def __getattr__(name: str) -> Any:
        if name == "app":
            if not built:
                built.append(create_app())
            return built[0]
        raise AttributeError(f"module {create_app.__module__!r} has no attribute {name!r}")

    return __getattr__


def create_app() -> WorkerPid:
    """The example app, its sessions in Redis, bare or behind fixguard as configured."""
    url, prefix, mode = settings("fixguard-e2e:")
    flask_app = basic_auth_app.create_app()
    client = redis_client(url)
    flask_app.session_interface = basic_auth_app.DictSessionInterface(
        RedisSessions(client, prefix + "app:")  # type: ignore[arg-type]
    )
    return serve(flask_app, basic_auth_app.protect, mode=mode, url=url, prefix=prefix, client=client)


__getattr__ = lazy_app(create_app)  # ``app``, as gunicorn's ``tests.e2e_app:app`` asks for it
