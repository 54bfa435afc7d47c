"""AsyncRedisStore from checked settings: one server, a Cluster, or a master watched by Sentinel.

The asyncio twin of :func:`fixguard.stores.redis_connect.store_from_options`,
with the same client options (a socket timeout that leaves ``WAIT`` room to
answer first) and the same Sentinel client, made by ``redis.asyncio``'s
Sentinel, which asks the Sentinels for the master on every new connection.
"""

from __future__ import annotations

from redis.asyncio import sentinel

from .redis_async import AsyncRedisStore, default_retry
from .redis_connect import client_options, sentinel_client

__all__ = ["async_store_from_options"]


def async_store_from_options(
    *,
    url: str | None,
    prefix: str,
    cluster: bool,
    sentinels: tuple[tuple[str, int], ...],
    master: str | None,
    min_replicas: int | None,
    wait_timeout: float,
) -> AsyncRedisStore:
    """An AsyncRedisStore from checked settings (see :func:`fixguard.redis_settings.check`).

    With ``min_replicas=None`` the first write that needs it asks the topology
    whether it has replicas (no event loop runs yet at start-up).
    """
    options = client_options(wait_timeout)
    options["retry"] = default_retry()  # redis.asyncio's Retry
    if sentinels:
        assert master is not None
        client = sentinel_client(sentinels, master, url, options, sentinel.Sentinel)
        return AsyncRedisStore(client, prefix, min_replicas=min_replicas, wait_timeout=wait_timeout)
    assert url is not None
    if cluster:  # redis.asyncio's RedisCluster takes no health_check_interval
        del options["health_check_interval"]
    return AsyncRedisStore.from_url(
        url, prefix, cluster=cluster, min_replicas=min_replicas, wait_timeout=wait_timeout, **options
    )
