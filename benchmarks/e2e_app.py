"""The apps ``benchmarks/e2e.py`` serves with gunicorn as ``e2e_app:app`` (one per server).

Chosen by ``FIXGUARD_BENCH_APP``: ``bare`` (the bare WSGI app of
``_common``), ``fixguard`` (that app behind FixGuard with a RedisStore, default
settings, ``secure=False`` for plain http), ``flask`` (the same view on Flask,
no session backend) or ``flask_session`` (Flask-Session 0.8 on Redis).
``FIXGUARD_BENCH_REDIS_URL`` is the benchmark's own redis-server. The app is
built at import, i.e. in each worker after the fork, so each worker has its
own Redis connections.
"""

from __future__ import annotations

import os
from typing import Any

from _common import SECRET, bare_app, flask_app


def create_app() -> Any:
    kind = os.environ.get("FIXGUARD_BENCH_APP", "bare")
    url = os.environ.get("FIXGUARD_BENCH_REDIS_URL", "")
    if kind == "bare":
        return bare_app
    if kind == "flask":
        return flask_app(None)
    if not url:
        raise ValueError("FIXGUARD_BENCH_REDIS_URL is required for the Redis-backed apps")
    if kind == "fixguard":
        from fixguard import FixGuard, RedisStore

        store = RedisStore.from_url(url, prefix="fge2e:")
        return FixGuard(bare_app, secret_key=SECRET, secure=False, store=store)
    if kind == "flask_session":
        import redis

        return flask_app(redis.Redis.from_url(url), prefix="fse2e:")
    # an exception, not SystemExit: gunicorn then halts instead of respawning the worker
    raise ValueError(f"FIXGUARD_BENCH_APP must be bare, fixguard, flask or flask_session, not {kind!r}")


app = create_app()
