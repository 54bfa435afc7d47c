"""Replication acknowledgements: ``WAIT`` after a write that makes an ID dead or inert.

Redis replicates asynchronously: a tombstone written to a master that dies
before a replica got it is lost, and the ID it killed lives again on the
promoted replica. ``WAIT n ms`` after the write, on the same connection, tells
how many replicas have it; fewer than ``n`` within ``ms`` is a StoreError (503).
These helpers are shared by every Redis store (sync and async): they only
queue a command on a pipeline and read replies.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from .base import StoreError

__all__ = [
    "append_wait",
    "check_acks",
    "moved",
    "node_pipeline",
    "redirect_or_down",
    "refresh_slots",
    "replicas_behind",
]


def append_wait(pipe: Any, replicas: int, timeout: float) -> None:
    """Queue ``WAIT replicas ms`` after the writes already in ``pipe`` (no extra round trip).

    ``WAIT`` counts the replicas that have the last write made on its own
    connection, so it must follow the write in the same pipeline. At least 1 ms:
    ``WAIT n 0`` would block for ever.
    """
    pipe.execute_command("WAIT", replicas, max(1, round(timeout * 1000)))


def check_acks(reply: Any, replicas: int, timeout: float, op: str) -> None:
    """StoreError unless ``WAIT`` answered with at least ``replicas`` acknowledgements."""
    if isinstance(reply, Exception):
        raise StoreError(f"Redis {op}: WAIT failed: {type(reply).__name__}")
    if isinstance(reply, bool) or not isinstance(reply, int) or reply < replicas:
        raise StoreError(
            f"Redis {op}: {reply} of {replicas} replicas acknowledged the write within {timeout:g}s"
        )


def replicas_behind(client: Any) -> int:
    """1 if every master of the topology has a replica, else 0: the automatic ``min_replicas``.

    Each master is asked (``INFO replication``, its ``connected_slaves``): a
    single server, the master Sentinel names, or every master of a Cluster
    (one round trip each, once per process).
    """
    cluster: Any = client if isinstance(client, RedisCluster) else None
    masters: list[Any] = cluster.get_primaries() if cluster is not None else [None]
    for node in masters:
        server = client if node is None else client.get_redis_connection(node)
        if int(server.info("replication").get("connected_slaves", 0)) < 1:
            return 0
    return 1 if masters else 0


def moved(reply: ResponseError) -> bool:
    return str(reply).startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "READONLY"))


def redirect_or_down(exc: BaseException) -> bool:
    """A reason to re-read the slot table: a slot moved, or the node did not answer."""
    if isinstance(exc, ResponseError):
        return moved(exc)
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | RedisClusterException)


def node_pipeline(client: Any, k: str) -> Any:
    """A pipeline on the one connection that writes ``k``: WAIT counts that connection's writes.

    On Cluster, a plain pipeline on the node that owns the key's slot (a
    cluster pipeline would send the keyless WAIT to some other node).
    """
    cluster: Any = client if isinstance(client, RedisCluster) else None
    if cluster is None:
        return client.pipeline(transaction=False)
    return cluster.get_redis_connection(cluster.get_node_from_key(k)).pipeline(transaction=False)


def refresh_slots(client: Any) -> None:
    """Re-read a Cluster's slot table (after a failover or a resharding); quiet if it cannot.

    Best effort: the next command fails closed if the table is still wrong. Any
    exception is swallowed, since an older redis-py trips over its own table
    (RuntimeError) when threads refresh it at once.
    """
    with contextlib.suppress(Exception):
        client.nodes_manager.initialize()
