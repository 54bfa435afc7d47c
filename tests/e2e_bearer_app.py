"""The WSGI app the bearer end-to-end test serves: ``tests.e2e_bearer_app:app``.

It is :mod:`examples.bearer_app` with its views unchanged, and just as
vulnerable, made to work under several gunicorn workers: the example binds
its opaque tokens in a module-level dict, and signs its JWTs and Flask session
with keys that are random per process. Here the token map lives in the
test's Redis (:class:`tests.e2e_app.RedisSessions`, under ``<prefix>app:``)
and both keys come from the environment, so every worker knows every token.

Configuration, from the environment (the test sets it for gunicorn):

``FIXGUARD_E2E_REDIS_URL``
    the Redis shared by every worker (the test's own ``redis-server``).
``FIXGUARD_E2E_PREFIX``
    key prefix for this run: the app's tokens under ``<prefix>app:``,
    fixguard's records under ``<prefix>fg:``.
``FIXGUARD_E2E_MODE``
    ``bare`` or ``protected`` (the example's own ``protect()`` with a
    :class:`~fixguard.RedisStore`).
``FIXGUARD_E2E_APP_KEY``
    the app's JWT and Flask session key (hex), the same in every worker.
``FIXGUARD_E2E_SECRET``
    fixguard's key (``protected`` only).
``FIXGUARD_E2E_EVENTS``
    optional: a file that gets one JSON line per fixguard event, with the
    worker's PID.

Every response carries ``X-Worker-Pid``, and ``X-E2E-Hold`` parks a request
in its worker until released, exactly as in :mod:`tests.e2e_app`.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from examples import bearer_app
from tests.e2e_app import HOLD_TIMEOUT, RedisSessions, WorkerPid, _event_logger


def create_app() -> WorkerPid:
    """The example API, its tokens in Redis, bare or behind fixguard as configured."""
    from fixguard import RedisStore

    url = os.environ["FIXGUARD_E2E_REDIS_URL"]
    prefix = os.environ.get("FIXGUARD_E2E_PREFIX", "fixguard-e2e-bearer:")
    mode = os.environ.get("FIXGUARD_E2E_MODE", "bare")
    if mode not in ("bare", "protected"):
        # an exception, not SystemExit: gunicorn then halts instead of respawning the worker
        raise ValueError(f"FIXGUARD_E2E_MODE must be 'bare' or 'protected', not {mode!r}")
    app_key = bytes.fromhex(os.environ["FIXGUARD_E2E_APP_KEY"])

    client = redis.Redis.from_url(url, socket_timeout=HOLD_TIMEOUT + 2, socket_connect_timeout=2)
    flask_app = bearer_app.create_app(
        tokens=RedisSessions(client, prefix + "app:"), jwt_key=app_key, secret_key=app_key
    )
    if mode == "protected":
        options: dict[str, Any] = {}
        events = os.environ.get("FIXGUARD_E2E_EVENTS")
        if events:
            options["on_event"] = _event_logger(events)
        bearer_app.protect(
            flask_app,
            secret_key=os.environ["FIXGUARD_E2E_SECRET"],
            secure=False,
            store=RedisStore.from_url(url, prefix=prefix + "fg:"),
            **options,
        )
    return WorkerPid(flask_app, client, prefix)


_app: WorkerPid | None = None


def __getattr__(name: str) -> Any:
    """``app``: built once per process, on first access (gunicorn's ``tests.e2e_bearer_app:app``)."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
