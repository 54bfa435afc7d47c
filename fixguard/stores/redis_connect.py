"""Redis clients for the three topologies, with one timeout and retry policy.

One server (``redis.Redis.from_url``), a Cluster (``RedisCluster.from_url``
from any node) or a master watched by Sentinel (``Sentinel(...).master_for``,
which asks the Sentinels for the current master on every new connection, so
it follows failovers). All get :meth:`RedisStore.from_url`'s defaults: 1 s
timeouts (longer if ``WAIT`` may take longer), one retry on a dropped
connection, a PING on a connection idle for 30 s.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis import connection, sentinel

from .base import StoreError
from .redis import DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_TIMEOUT, RedisStore, default_retry

__all__ = ["client_options", "sentinel_client", "store_from_options"]


def client_options(wait_timeout: float) -> dict[str, Any]:
    """Timeouts and retry: a socket timeout that leaves ``WAIT`` room to answer first."""
    timeout = max(DEFAULT_TIMEOUT, wait_timeout + 0.5)
    return {
        "socket_connect_timeout": DEFAULT_TIMEOUT,
        "socket_timeout": timeout,
        "retry": default_retry(),
        "health_check_interval": DEFAULT_HEALTH_CHECK_INTERVAL,
    }


def sentinel_client(
    sentinels: tuple[tuple[str, int], ...],
    master: str,
    url: str | None,
    options: dict[str, Any],
    sentinel_class: Any = None,
) -> Any:
    """The master ``master`` as the Sentinels name it; ``url`` lends password, db and TLS only.

    ``sentinel_class``: ``redis.asyncio.sentinel.Sentinel`` for an asyncio client.
    """
    extra: dict[str, Any] = {}
    if url:
        parse: Any = connection.parse_url  # untyped in redis-py
        parsed = parse(url)
        extra = {k: parsed[k] for k in ("username", "password", "db") if parsed.get(k) is not None}
        if url.startswith("rediss://"):
            extra["ssl"] = True
    watch = {"socket_connect_timeout": DEFAULT_TIMEOUT, "socket_timeout": DEFAULT_TIMEOUT}
    factory: Any = sentinel_class or sentinel.Sentinel  # untyped in redis-py
    return factory(list(sentinels), sentinel_kwargs=watch).master_for(master, **options, **extra)


def store_from_options(
    *,
    url: str | None,
    prefix: str,
    cluster: bool,
    sentinels: tuple[tuple[str, int], ...],
    master: str | None,
    min_replicas: int | None,
    wait_timeout: float,
) -> RedisStore:
    """A RedisStore from checked settings (see :func:`fixguard.redis_settings.check`).

    With ``min_replicas=None`` the topology is asked now whether it has
    replicas; if Redis does not answer yet, the first write that needs it asks.
    """
    options = client_options(wait_timeout)
    if sentinels:
        assert master is not None
        client = sentinel_client(sentinels, master, url, options)
        store = RedisStore(client, prefix, min_replicas=min_replicas, wait_timeout=wait_timeout)
    else:
        assert url is not None
        store = RedisStore.from_url(
            url, prefix, cluster=cluster, min_replicas=min_replicas, wait_timeout=wait_timeout, **options
        )
    with contextlib.suppress(StoreError):
        store.replicas()
    return store
