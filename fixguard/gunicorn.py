"""gunicorn hooks: protect an app you cannot edit, from a gunicorn config file.

::

    # gunicorn.conf.py  (examples/gunicorn.conf.py is one)
    from fixguard.gunicorn import nworkers_changed, on_starting, post_worker_init

    $ FIXGUARD_SECRET_KEY=… FIXGUARD_REDIS_URL=redis://… gunicorn -c gunicorn.conf.py -w 4 yourapp:app

The configuration is the deployment's (:func:`fixguard.config.read_deployment`):
the TOML file ``FIXGUARD_CONFIG`` names, if any, then ``FIXGUARD_*`` variables
on top of it.

* :func:`post_worker_init` wraps each worker's loaded app (``worker.wsgi``) in a
  :class:`~fixguard.FixGuard`. Each worker builds its own, after the fork, so
  no Redis connection is shared between processes.
* :func:`on_starting` checks the same configuration once, in the master, before
  any worker starts: a bad setting stops gunicorn with one message instead of
  a crash loop of workers. It also refuses more than one worker without Redis:
  every worker would keep sessions in its own memory, so a session made by one
  would be unknown to the others and users would be logged out at random.
* :func:`nworkers_changed` holds that line when workers are added later
  (``kill -TTIN``, a reload that raises ``workers``): it keeps the old count.

gunicorn is not imported here: the hooks only use the objects it passes in.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .config import ConfigError, build_guard, read_deployment
from .middleware import FixGuard
from .redis_settings import describe, wants_redis
from .stores.base import StoreError

__all__ = ["StartupRefused", "nworkers_changed", "on_starting", "post_worker_init", "shared_store_problem"]


class StartupRefused(RuntimeError):
    """fixguard refuses this gunicorn setup. gunicorn prints ``Error: <message>`` and exits with 1."""


def shared_store_problem(workers: int, values: Mapping[str, Any]) -> str | None:
    """Why ``workers`` processes cannot share sessions under ``values``, or None if they can."""
    if workers <= 1 or wants_redis(values):
        return None
    return (
        f"fixguard: refusing to run {workers} workers without Redis: each worker would keep its "
        "sessions in its own memory (MemoryStore), so a session created by one worker would be "
        "unknown to the others and users would be logged out at random. Set FIXGUARD_REDIS_URL "
        "(or redis_url in the FIXGUARD_CONFIG file; or Sentinels: FIXGUARD_REDIS_SENTINELS) to a Redis "
        "that every worker reaches, or run "
        "one worker (-w 1, with --threads for concurrency)."
    )


def describe_store(values: Mapping[str, Any]) -> str:
    """The store in words for the log; never the Redis URL (it may hold a password)."""
    if wants_redis(values):
        return describe(values, "RedisStore")
    return "MemoryStore (this process only)"


def on_starting(server: Any) -> None:
    """gunicorn master, before any worker: validate the configuration and the worker count."""
    try:
        values = read_deployment()
        problem = shared_store_problem(server.num_workers, values)
        if problem:
            raise StartupRefused(problem)
        guard = build_guard(FixGuard, _never_called, values, {})  # every check FixGuard makes
    except (ConfigError, StartupRefused) as exc:
        message = str(exc) if isinstance(exc, StartupRefused) else f"fixguard: {exc}"
        server.log.error(message)
        raise StartupRefused(message) from None
    try:
        ping = getattr(guard.store, "ping", None)
        if ping is not None:
            try:
                ping()
            except StoreError as exc:
                server.log.warning(
                    "fixguard: Redis does not answer yet (%s): requests that need a session get 503 "
                    "until it does",
                    exc,
                )
    finally:
        close = getattr(guard.store, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()  # the master serves nothing; workers open their own connections
    if not wants_redis(values) and server.cfg.max_requests:
        server.log.warning(
            "fixguard: max_requests restarts the worker, and a MemoryStore forgets every session "
            "when it does; set FIXGUARD_REDIS_URL to keep sessions across restarts"
        )
    server.log.info("fixguard: configuration checked; store: %s", describe_store(values))


def post_worker_init(worker: Any) -> None:
    """gunicorn worker, app loaded: wrap ``worker.wsgi`` in a FixGuard built from the configuration.

    A configuration error makes the worker fail to boot, which stops gunicorn:
    an app that was meant to be protected is never served unprotected.
    """
    app = getattr(worker, "wsgi", None)
    if not callable(app):
        raise StartupRefused(
            "fixguard: this gunicorn worker class serves no WSGI app (worker.wsgi): fixguard is WSGI "
            "middleware; use a WSGI worker class (sync, gthread, gevent, eventlet, tornado)"
        )
    if isinstance(app, FixGuard):
        raise StartupRefused(
            "fixguard: the app is already wrapped in FixGuard: drop either the wrapping in code or "
            "the post_worker_init hook, not both"
        )
    values = read_deployment()
    problem = shared_store_problem(worker.cfg.workers, values)
    if problem:
        raise StartupRefused(problem)
    worker.wsgi = build_guard(FixGuard, app, values, {})
    worker.log.info(
        "fixguard: protecting the app in worker %s; store: %s", os.getpid(), describe_store(values)
    )


def nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """gunicorn master, worker count changed: without Redis, keep it at one worker."""
    if old_value is None or new_value <= old_value:
        return  # the first count is checked by on_starting; fewer workers is always fine
    try:
        values = read_deployment()
    except ConfigError:
        return  # reported by the workers as they boot
    problem = shared_store_problem(new_value, values)
    if problem:
        server.log.error("%s Keeping %d worker(s).", problem, old_value)
        server.num_workers = old_value


def _never_called(environ: Any, start_response: Any) -> Iterable[bytes]:
    """The app of the guard on_starting builds to validate the configuration; it serves nothing."""
    raise RuntimeError("fixguard's configuration check app is not for serving")
