"""AsyncRedisStore: the store protocol on ``redis.asyncio``, for the ASGI middleware.

The same key layout, value format and Lua scripts as :class:`RedisStore`
(imported from :mod:`fixguard.stores.redis`, never copied): a WSGI app and
an ASGI app on one Redis with one prefix share sessions, so a fleet can mix
them or migrate from one to the other. Every method is a coroutine; nothing
here blocks the event loop. ``from_url`` has RedisStore's timeouts and retry
policy. Fail closed: anything redis-py raises becomes :class:`StoreError`.
"""

from __future__ import annotations

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
    UNREADABLE,
    _describe,
    _ms,
    _text,
)

__all__ = ["AsyncRedisStore"]

AsyncClient = aredis.Redis | RedisCluster


def default_retry() -> Retry:
    """One retry on connection errors only, after 10-50 ms: RedisStore's policy, for asyncio."""
    return Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(redis.ConnectionError,))


class AsyncRedisStore:
    """Records under ``prefix + key`` in Redis, exactly as :class:`RedisStore` keeps them.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
    :param prefix: put in front of every key (the same as the WSGI side's, to share sessions).
    """

    def __init__(self, client: AsyncClient, prefix: str = "fixguard:") -> None:
        self.client = client
        self.prefix = prefix
        # As RedisStore does: the read every request makes goes straight to a pooled
        # connection (with the connection's own retry) when the client is a plain Redis.
        plain = type(client) is aredis.Redis and getattr(client, "connection", None) is None
        self._pool: Any = getattr(client, "connection_pool", None) if plain else None
        self._freeze = client.register_script(_FREEZE)
        self._replace = client.register_script(_REPLACE)
        self._index_add_script = client.register_script(_INDEX_ADD)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "fixguard:", *, cluster: bool = False, **kwargs: Any
    ) -> AsyncRedisStore:
        """A store on a new ``redis.asyncio`` client; the defaults of :meth:`RedisStore.from_url`.

        1 s connect and socket timeouts, one retry on connection errors, a PING
        before a command on a connection idle for 30 s; ``kwargs`` override them.
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
        return cls(factory(url, **options), prefix)

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
        """Live to rotating under ``token``, TTL kept (one script call); the value before."""
        k, args = self.prefix + key, [token, VERSION + LIVE, VERSION + ROTATING]
        return _text(
            await self._run("freeze", k, lambda: self._freeze(keys=[k], args=args), foreign=UNREADABLE)
        )

    async def retire(self, key: str, value: str, ttl: float) -> None:
        """``SET PX``, unconditionally: the tombstone wins over whatever was there."""
        k = self.prefix + key
        await self._run("SET", k, lambda: self.client.set(k, value, px=_ms(ttl)))

    async def delete(self, key: str) -> None:
        """``DEL``."""
        k = self.prefix + key
        await self._run("DEL", k, lambda: self.client.delete(k))

    async def handover(self, move: Handover) -> Outcome:
        """Index, ``SET NX``, swap or overwrite, re-point the chain: one pipelined round trip.

        The commands, their order and how their replies are read are
        :meth:`RedisStore.handover`'s.
        """
        p = self.prefix
        pipe: Any = self.client.pipeline(transaction=False)
        if move.subject:
            index = p + subject_index(move.subject)
            pipe.eval(_INDEX_ADD, 1, index, move.new_key, _ms(move.subject_ttl), move.unlink)
        pipe.set(p + move.new_key, move.new_value, px=_ms(move.new_ttl), nx=True)
        if move.old_key and move.force:
            pipe.set(p + move.old_key, move.old_value, px=_ms(move.old_ttl or 0.001), get=True)
        elif move.old_key:
            ms = "" if move.old_ttl is None else str(_ms(move.old_ttl))
            pipe.eval(_SWAP, 1, p + move.old_key, move.old_guard, move.old_value, ms)
        if move.chain_key:
            pipe.set(p + move.chain_key, move.chain_value, xx=True, keepttl=True)
        replies = await self._run("handover", p + move.new_key, lambda: pipe.execute(raise_on_error=False))
        for reply in replies:
            if isinstance(reply, ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise StoreError(f"Redis handover failed: {_describe(reply, p + move.new_key)}")
        at = 1 if move.subject else 0
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
        """Release the client's connections."""
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
