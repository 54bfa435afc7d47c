"""The apps ``benchmarks/e2e.py`` serves with gunicorn as ``e2e_app:app`` (one per server).

Chosen by ``FIXGUARD_BENCH_APP``: ``bare`` (the bare WSGI app of
``_common``), ``fixguard`` (that app behind FixGuard with a RedisStore, default
settings, ``secure=False`` for plain http), ``flask`` (the same view on Flask,
no session backend) or ``flask_session`` (Flask-Session 0.8 on Redis); for
``benchmarks/settle.py``, ``login_bare`` (``_common.failing_login_app``: a
login that fails in about 1 ms) and ``login_fixguard`` (that app behind
FixGuard as above, its default login rule ``POST /login``; with
``settle_time`` from ``FIXGUARD_BENCH_SETTLE_TIME`` when set).
``FIXGUARD_BENCH_REDIS_URL`` is the benchmark's own redis-server,
``FIXGUARD_BENCH_PREFIX`` the key prefix (default ``fge2e:``). The app is
built at import, i.e. in each worker after the fork, so each worker has its
own Redis connections.
"""

from __future__ import annotations

import os
from typing import Any

from _common import SECRET, bare_app, failing_login_app, flask_app


def create_app() -> Any:
    kind = os.environ.get("FIXGUARD_BENCH_APP", "bare")
    url = os.environ.get("FIXGUARD_BENCH_REDIS_URL", "")
    if kind == "bare":
        return bare_app
    if kind == "login_bare":
        return failing_login_app
    if kind == "flask":
        return flask_app(None)
    if not url:
        raise ValueError("FIXGUARD_BENCH_REDIS_URL is required for the Redis-backed apps")
    if kind in ("fixguard", "login_fixguard"):
        from fixguard import FixGuard, RedisStore

        store = RedisStore.from_url(url, prefix=os.environ.get("FIXGUARD_BENCH_PREFIX", "fge2e:"))
        options: dict[str, Any] = {}
        settle = os.environ.get("FIXGUARD_BENCH_SETTLE_TIME")
        if settle:
            options["settle_time"] = float(settle)
        inner = bare_app if kind == "fixguard" else failing_login_app
        return FixGuard(inner, secret_key=SECRET, secure=False, store=store, **options)
    if kind == "flask_session":
        import redis

        return flask_app(redis.Redis.from_url(url), prefix="fse2e:")
    # an exception, not SystemExit: gunicorn then halts instead of respawning the worker
    raise ValueError(
        "FIXGUARD_BENCH_APP must be bare, fixguard, flask, flask_session, login_bare or login_fixguard, "
        f"not {kind!r}"
    )


app = create_app()
