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

from examples import bearer_app
from tests.e2e_app import RedisSessions, WorkerPid, lazy_app, redis_client, serve, settings


def create_app() -> WorkerPid:
    """The example API, its tokens in Redis, bare or behind fixguard as configured."""
    url, prefix, mode = settings("fixguard-e2e-bearer:")
    app_key = bytes.fromhex(os.environ["FIXGUARD_E2E_APP_KEY"])
    client = redis_client(url)
    flask_app = bearer_app.create_app(
        tokens=RedisSessions(client, prefix + "app:"), jwt_key=app_key, secret_key=app_key
    )
    return serve(flask_app, bearer_app.protect, mode=mode, url=url, prefix=prefix, client=client)


__getattr__ = lazy_app(create_app)  # ``app``, as gunicorn's ``tests.e2e_bearer_app:app`` asks for it
