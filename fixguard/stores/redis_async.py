"""AsyncRedisStore: the store protocol on ``redis.asyncio``, for the ASGI middleware.

The same key layout, value format and Lua scripts as :class:`RedisStore`
(imported from :mod:`fixguard.stores.redis`, never copied): a WSGI app and
an ASGI app on one Redis with one prefix share sessions, so a fleet can mix
them or migrate from one to the other. Every method is a coroutine; nothing
here blocks the event loop. ``from_url`` has RedisStore's timeouts and retry
policy. Fail closed: anything redis-py raises becomes :class:`StoreError`.

Durability is RedisStore's too: every write that makes an ID dead or inert is
followed by ``WAIT`` in the same pipeline, on the same connection
(:mod:`fixguard.stores.replication`'s :func:`append_wait` and :func:`check_acks`);
on Cluster that pipeline goes to a plain client of the node owning the key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..core.ops import drive_async
from ..record import LIVE, ROTATING, VERSION
from . import index_steps
from .base import Handover, Outcome, SessionSummary, StoreError, subject_index
from .redis import (
    _FREEZE,
    _INDEX_ADD,
    _REPLACE,
    _SWAP,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    UNREADABLE,
    _describe,
    _eval,
    _ms,
    _text,
)
from .replication import append_wait, check_acks, redirect_or_down

__all__ = ["AsyncRedisStore"]

AsyncClient = aredis.Redis | RedisCluster


def default_retry() -> Retry:
    """One retry on connection errors only, after 10-50 ms: RedisStore's policy, for asyncio."""
    return Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(redis.ConnectionError,))


class AsyncRedisStore:
    """Records under ``prefix + key`` in Redis, exactly as :class:`RedisStore` keeps them.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
    :param prefix: put in front of every key (the same as the WSGI side's, to share sessions).
    :param min_replicas: replicas that must acknowledge (``WAIT``) each write that
        makes an ID dead or inert; None: 1 if the topology has replicas, else 0.
    :param wait_timeout: seconds ``WAIT`` may take; no acknowledgement in time is a StoreError.
    """

    def __init__(
        self,
        client: AsyncClient,
        prefix: str = "fixguard:",
        *,
        min_replicas: int | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> None:
        self.client = client
        self.prefix = prefix
        #: As RedisStore's: None is decided by the topology on first need, then kept.
        self.min_replicas = min_replicas
        self.wait_timeout = wait_timeout
        self._cluster = isinstance(client, RedisCluster)
        self._nodes: dict[str, aredis.Redis] = {}  # Cluster: a plain client per master, for WAIT
        # As RedisStore does: the read every request makes goes straight to a pooled
        # connection (with the connection's own retry) when the client is a plain Redis.
        plain = type(client) is aredis.Redis and getattr(client, "connection", None) is None
        self._pool: Any = getattr(client, "connection_pool", None) if plain else None
        self._freeze = client.register_script(_FREEZE)
        self._replace = client.register_script(_REPLACE)
        self._index_add_script = client.register_script(_INDEX_ADD)

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "fixguard:",
        *,
        cluster: bool = False,
        min_replicas: int | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **kwargs: Any,
    ) -> AsyncRedisStore:
        """A store on a new ``redis.asyncio`` client; the defaults of :meth:`RedisStore.from_url`.

        1 s connect and socket timeouts, one retry on connection errors, a PING
        before a command on a connection idle for 30 s; ``kwargs`` override them.
        ``min_replicas`` and ``wait_timeout``: see the class.
        """
        options: dict[str, Any] = {
            "socket_connect_timeout": DEFAULT_TIMEOUT,
            "socket_timeout": DEFAULT_TIMEOUT,
            "retry": default_retry(),
        }
        if not cluster:
            options["health_check_interval"] = DEFAULT_HEALTH_CHECK_INTERVAL
        options.update(kwargs)
        factory: Any = RedisCluster.from_url if cluster else aredis.Redis.from_url
        return cls(factory(url, **options), prefix, min_replicas=min_replicas, wait_timeout=wait_timeout)

    # -- the protocol, as coroutines ----------------------------------------------------

    async def get(self, key: str) -> str | None:
        """The value under ``key``, or None: one ``GET``."""
        k = self.prefix + key
        call = (lambda: self._lean_get(k)) if self._pool is not None else (lambda: self.client.get(k))
        return _text(await self._run("GET", k, call, foreign=UNREADABLE))

    async def _lean_get(self, k: str) -> Any:
        """``GET`` on a pooled connection with the connection's own retry, nothing else."""
        pool = self._pool
        conn = await pool.get_connection()
        try:
            retry = conn.retry
            return await retry.call_with_retry(lambda: _send_get(conn, k), lambda _error: conn.disconnect())
        finally:
            await pool.release(conn)

    async def create(self, key: str, value: str, ttl: float) -> bool:
        """``SET NX PX``: False if the key exists (whatever it holds)."""
        k = self.prefix + key
        return bool(await self._run("SET NX", k, lambda: self.client.set(k, value, px=_ms(ttl), nx=True)))

    async def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        """Overwrite only an existing key whose guard is ``guard`` (one script call)."""
        k, ms = self.prefix + key, "" if ttl is None else str(_ms(ttl))
        return bool(await self._run("replace", k, lambda: self._replace(keys=[k], args=[guard, value, ms])))

    async def freeze(self, key: str, token: str) -> str | None:
        """Live to rotating under ``token``, TTL kept (one script call); the value before.

        With replicas to wait for, ``EVAL`` and ``WAIT`` go in one pipeline, and an
        unacknowledged freeze is undone before the StoreError (RedisStore's rule).
        """
        k, args = self.prefix + key, [token, VERSION + LIVE, VERSION + ROTATING]
        replicas = await self.replicas()
        if replicas == 0:
            value = await self._run(
                "freeze", k, lambda: self._freeze(keys=[k], args=args), foreign=UNREADABLE
            )
            return _text(value)
        reply, acks = await self._durable_write("freeze", k, lambda pipe: _eval(pipe, _FREEZE, k, *args))
        before = UNREADABLE if isinstance(reply, ResponseError) else _text(reply)
        try:
            check_acks(acks, replicas, self.wait_timeout, "freeze")
        except StoreError:
            if before is not None and before.startswith(VERSION + LIVE):  # undo, best effort
                guard = VERSION + ROTATING + token
                with contextlib.suppress(StoreError):
                    await self._run("unfreeze", k, lambda: self._replace(keys=[k], args=[guard, before, ""]))
            raise
        return before

    async def retire(self, key: str, value: str, ttl: float) -> None:
        """``SET PX``, unconditionally: the tombstone wins over whatever was there (then ``WAIT``)."""
        k = self.prefix + key
        if await self.replicas() == 0:
            await self._run("SET", k, lambda: self.client.set(k, value, px=_ms(ttl)))
        else:
            await self._durable("SET", k, lambda pipe: pipe.set(k, value, px=_ms(ttl)))

    async def delete(self, key: str) -> None:
        """``DEL``."""
        k = self.prefix + key
        await self._run("DEL", k, lambda: self.client.delete(k))

    async def handover(self, move: Handover) -> Outcome:
        """Index, ``SET NX``, swap or overwrite, re-point the chain: one pipelined round trip.

        The commands, their order, how their replies are read and where the
        tombstone's ``WAIT`` goes are :meth:`RedisStore.handover`'s. Scripts go
        as ``EVAL`` commands: a cluster pipeline has no ``eval()``.
        """
        p = self.prefix
        durable = bool(move.old_key and move.force) and await self.replicas() > 0
        split = durable and self._cluster  # the tombstone and its WAIT go to their own node
        pipe: Any = self.client.pipeline(transaction=False)
        if move.subject:
            index = p + subject_index(move.subject)
            _eval(pipe, _INDEX_ADD, index, move.new_key, _ms(move.subject_ttl), move.unlink)
        pipe.set(p + move.new_key, move.new_value, px=_ms(move.new_ttl), nx=True)
        if move.old_key and move.force and not split:
            pipe.set(p + move.old_key, move.old_value, px=_ms(move.old_ttl or 0.001), get=True)
        elif move.old_key and not move.force:
            ms = "" if move.old_ttl is None else str(_ms(move.old_ttl))
            _eval(pipe, _SWAP, p + move.old_key, move.old_guard, move.old_value, ms)
        if move.chain_key:
            pipe.set(p + move.chain_key, move.chain_value, xx=True, keepttl=True)
        if durable and not split:
            append_wait(pipe, await self.replicas(), self.wait_timeout)
        replies = list(
            await self._run("handover", p + move.new_key, lambda: pipe.execute(raise_on_error=False))
        )
        if durable and not split:
            check_acks(replies.pop(), await self.replicas(), self.wait_timeout, "handover")
        for reply in replies:
            if isinstance(reply, ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise StoreError(f"Redis handover failed: {_describe(reply, p + move.new_key)}")
        at = 1 if move.subject else 0
        if split:
            k, ttl = p + move.old_key, _ms(move.old_ttl or 0.001)
            tomb = await self._durable(
                "handover", k, lambda node: node.set(k, move.old_value, px=ttl, get=True)
            )
            replies.insert(at + 1, tomb)
        created = replies[at] is True or _text(replies[at]) == "OK"
        if not move.old_key:
            return Outcome(created, True)
        old_reply = replies[at + 1]
        if isinstance(old_reply, ResponseError):  # another Redis type under the key
            if move.force:
                await self.retire(move.old_key, move.old_value, move.old_ttl or 0.001)
                return Outcome(created, True, UNREADABLE)
            return Outcome(created, False, None)
        if move.force:
            return Outcome(created, True, _text(old_reply))
        if old_reply == 1:
            return Outcome(created, True)
        return Outcome(created, False, None if old_reply is None else _text(old_reply))

    # -- durability: WAIT after what kills an ID ---------------------------------------

    async def replicas(self) -> int:
        """How many replicas must acknowledge a write that kills an ID (decided once, then kept).

        None asks every master (``INFO replication``): 1 if each has a replica, else 0.
        """
        if self.min_replicas is None:
            self.min_replicas = await self._run("INFO", "", self._replicas_behind)
        return self.min_replicas

    async def _replicas_behind(self) -> int:
        if not self._cluster:
            masters: list[Any] = [self.client]
        else:
            cluster: Any = self.client
            await cluster.initialize()
            masters = [self._node_client(node) for node in cluster.get_primaries()]
        for server in masters:
            if int((await server.info("replication")).get("connected_slaves", 0)) < 1:
                return 0
        return 1 if masters else 0

    def _node_client(self, node: Any) -> aredis.Redis:
        """A plain client of one Cluster node (kept): ``WAIT`` must follow the write on its connection."""
        client = self._nodes.get(node.name)
        if client is None:
            pool = aredis.ConnectionPool(**node.connection_kwargs)
            client = self._nodes[node.name] = aredis.Redis(connection_pool=pool)
        return client

    async def _durable(self, op: str, k: str, queue: Callable[[Any], Any]) -> Any:
        """``queue(pipe)``'s one write on ``k``, then ``WAIT``; StoreError unless acknowledged in time."""
        write, acks = await self._durable_write(op, k, queue)
        check_acks(acks, await self.replicas(), self.wait_timeout, op)
        return write

    async def _durable_write(self, op: str, k: str, queue: Callable[[Any], Any]) -> tuple[Any, Any]:
        """One round trip: the write on ``k`` and ``WAIT`` on its connection; both replies.

        On Cluster, a moved slot or a dead node re-reads the slot table and tries
        once more (on the new owner), then fails closed.
        """
        replicas = await self.replicas()

        async def attempt() -> tuple[Any, Any]:
            pipe: Any
            if self._cluster:
                cluster: Any = self.client
                await cluster.initialize()
                pipe = self._node_client(cluster.get_node_from_key(k)).pipeline(transaction=False)
            else:
                pipe = self.client.pipeline(transaction=False)
            queue(pipe)
            append_wait(pipe, replicas, self.wait_timeout)
            write, acks = await pipe.execute(raise_on_error=False)
            if isinstance(write, ResponseError) and not str(write).startswith("WRONGTYPE"):
                raise write  # MOVED, READONLY, ...: not written
            return write, acks

        if self._cluster:
            try:
                return await attempt()
            except Exception as exc:  # all of them, as in _run
                if not redirect_or_down(exc):
                    raise StoreError(f"Redis {op} failed: {_describe(exc, k)}") from None
                with contextlib.suppress(Exception):  # best effort: the retry fails closed
                    await self.client.nodes_manager.initialize()  # type: ignore[union-attr]
        result: tuple[Any, Any] = await self._run(op, k, attempt)
        return result

    async def link(self, subject: str, key: str, ttl: float) -> None:
        """Index session ``key`` under ``subject``."""
        await self._index_add(subject_index(subject), key, ttl)

    async def sessions(self, subject: str) -> list[SessionSummary]:
        """The subject's live sessions, oldest first (never their IDs)."""
        return await drive_async(index_steps.sessions(subject), self)

    async def revoke(self, subject: str) -> int:
        """Retire every session of ``subject`` now; returns how many were live."""
        return await drive_async(index_steps.revoke(subject), self)

    # -- subject index primitives (the steps of fixguard.stores.index_steps call these) --

    async def _index_add(self, index: str, key: str, ttl: float) -> None:
        k, ms = self.prefix + index, _ms(ttl)
        await self._run("index add", k, lambda: self._index_add_script(keys=[k], args=[key, ms, ""]))

    async def _index_members(self, index: str) -> list[str]:
        k = self.prefix + index
        members = await self._run("SMEMBERS", k, lambda: self.client.smembers(k), foreign=set())
        return sorted(m for m in map(_text, members) if m is not None and m != UNREADABLE)

    async def _index_remove(self, index: str, keys: list[str]) -> None:
        if keys:
            k = self.prefix + index
            await self._run("SREM", k, lambda: self.client.srem(k, *keys))

    async def _index_ttl(self, index: str) -> float:
        k = self.prefix + index
        ms = await self._run("PTTL", k, lambda: self.client.pttl(k), foreign=-2)
        return max(0.0, int(ms) / 1000)

    # -- operations --------------------------------------------------------------------

    async def ping(self) -> bool:
        """True if Redis answers; StoreError otherwise. For health checks."""
        return bool(await self._run("PING", "", self.client.ping))

    async def close(self) -> None:
        """Release the client's connections (and the Cluster nodes' own clients)."""
        for node in self._nodes.values():
            with contextlib.suppress(Exception):
                await node.aclose()
        await self.client.aclose()

    async def _run(self, op: str, key: str, call: Callable[[], Awaitable[Any]], foreign: Any = None) -> Any:
        """Await redis-py; a wrong-type key gives ``foreign``, any failure StoreError (no key, no value)."""
        try:
            return await call()
        except UnicodeDecodeError:
            return foreign
        except ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):
                return foreign
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None
        except (RedisError, RedisClusterException) as exc:
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None
        except OSError as exc:  # a socket error redis.asyncio let through
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None


async def _send_get(conn: Any, k: str) -> Any:
    await conn.send_command("GET", k)
    return await conn.read_response()
