"""RedisStore: the store protocol on Redis, shared by every worker and host.

Each operation is one command on one key (``GET``, ``SET NX PX``, ``SET PX``,
``DEL``) or one small Lua script on one key, so it is atomic there and works
unchanged on a standalone server, behind Sentinel, and on Redis Cluster (no
multi-key command, no hash tags). The compare-and-set scripts only read the
value's guard (the part before the first ``|``), never its JSON.

Fail closed: anything redis-py raises becomes :class:`StoreError` (the
middleware answers 503). A value fixguard could not have written — not UTF-8,
or a key of another Redis type — comes back as a string that
:func:`fixguard.record.decode` rejects: "no session", not an outage.

redis-py is optional: ``pip install 'fixguard[redis]'``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.cluster import RedisCluster
    from redis.exceptions import RedisClusterException, RedisError, ResponseError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("RedisStore needs redis-py: pip install 'fixguard[redis]'") from exc

from ..record import LIVE, ROTATING, VERSION
from .base import Handover, Outcome, StoreError, SubjectIndex, subject_index

__all__ = ["RedisStore"]

Client = redis.Redis | RedisCluster

#: What a non-UTF-8 or wrong-type value reads as: no version, so decode() rejects it.
UNREADABLE = "\ufffd|unreadable value"

# Shared by both scripts: the guard is what precedes the first "|", if that bar
# is at position 1..40 (0-based) — exactly fixguard.record.guard_of.
_GUARD = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local bar = string.find(v, '|', 1, true)
if not bar or bar < 2 or bar > 41 then bar = 1 end
"""

# KEYS[1] key; ARGV: token, live prefix ("1L"), rotating prefix ("1R").
# Live -> rotating under a new token, rest of the value and TTL kept. Returns the old value.
_FREEZE = (
    _GUARD
    + """
if bar > 1 and string.sub(v, 1, 2) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3] .. ARGV[1] .. string.sub(v, bar), 'KEEPTTL')
end
return v
"""
)

# KEYS[1] key; ARGV: expected guard, new value, TTL in ms ("" keeps the TTL).
# Overwrites only an existing key whose guard matches; returns 1 if written.
_REPLACE = (
    _GUARD
    + """
if string.sub(v, 1, bar - 1) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)

# KEYS[1] key; ARGV: expected guard, new value, TTL in ms ("" keeps the TTL).
# The handover's swap: like _REPLACE, but says why it refused: 1 if written (or
# already holding the new value: a replayed pipeline), else the current guard,
# false if the key is gone.
_SWAP = (
    _GUARD
    + """
if v == ARGV[2] then return 1 end
local current = string.sub(v, 1, bar - 1)
if current ~= ARGV[1] then return current end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)

# KEYS[1] a subject's index set; ARGV: member, TTL in ms, member to drop ("" none).
# Adds the member and makes the set live at least that long (never shortens it).
_INDEX_ADD = """
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[3] and ARGV[3] ~= '' then redis.call('SREM', KEYS[1], ARGV[3]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# from_url defaults: a store that does not answer within about a second is down
# (503), and one retry on a fresh connection rides over a connection dropped
# mid-command (failover, restart, a proxy's idle cut). Timeouts are not retried:
# a slow server would only get slower, and the request would wait twice as long.
DEFAULT_TIMEOUT = 1.0
DEFAULT_HEALTH_CHECK_INTERVAL = 30


def default_retry() -> Retry:
    """One retry on connection errors only, after 10-50 ms (redis-py's own Retry)."""
    return Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(redis.ConnectionError,))


class RedisStore(SubjectIndex):
    """Records under ``prefix + key`` in Redis, one key per record.

    Key layout (every key carries ``prefix``): ``<key>`` is one session record
    or tombstone, a string ``<guard>|<json>`` with a TTL; ``subject:<hash>``
    is one subject's index, a set of record keys with a TTL.

    :param client: a ``redis.Redis`` (also a Sentinel ``master_for`` client) or a
        ``redis.cluster.RedisCluster``; responses may be bytes or decoded str.
    :param prefix: put in front of every key, so fixguard shares a database safely.
    """

    def __init__(self, client: Client, prefix: str = "fixguard:") -> None:
        self.client = client
        self.prefix = prefix
        # The read every request makes goes straight to a pooled connection when
        # the client is a plain redis.Redis: redis-py's command layer (callbacks,
        # observability hooks) costs more than the round trip's own Python work.
        self._pool: Any = getattr(client, "connection_pool", None) if _plain_client(client) else None
        self._freeze = client.register_script(_FREEZE)
        self._replace = client.register_script(_REPLACE)
        self._index_add_script = client.register_script(_INDEX_ADD)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "fixguard:", *, cluster: bool = False, **kwargs: Any
    ) -> RedisStore:
        """A store on a new client for ``redis://``, ``rediss://`` or ``unix://`` URLs.

        ``cluster=True`` makes a ``RedisCluster`` from a seed node's URL.
        ``kwargs`` go to redis-py and override the defaults here: 1 s connect
        and socket timeouts, one retry on connection errors, a PING before a
        command on a connection idle for 30 s.
        """
        options: dict[str, Any] = {
            "socket_connect_timeout": DEFAULT_TIMEOUT,
            "socket_timeout": DEFAULT_TIMEOUT,
            "retry": default_retry(),
            "health_check_interval": DEFAULT_HEALTH_CHECK_INTERVAL,
        }
        options.update(kwargs)
        factory = RedisCluster.from_url if cluster else redis.Redis.from_url
        return cls(factory(url, **options), prefix)

    # -- the protocol ------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None: one ``GET``."""
        k = self.prefix + key
        call = (lambda: self._lean_get(k)) if self._pool is not None else (lambda: self.client.get(k))
        return _text(self._run("GET", k, call, foreign=UNREADABLE))

    def _lean_get(self, k: str) -> Any:
        """``GET`` on a pooled connection with the connection's own Retry, nothing else."""
        pool = self._pool
        assert pool is not None
        conn = pool.get_connection()
        try:
            return conn.retry.call_with_retry(lambda: _send_get(conn, k), lambda _error: conn.disconnect())
        finally:
            reconnect = getattr(conn, "should_reconnect", None)
            if reconnect is not None and reconnect():
                conn.disconnect()
            pool.release(conn)

    def create(self, key: str, value: str, ttl: float) -> bool:
        """``SET NX PX``: False if the key exists (whatever it holds)."""
        k = self.prefix + key
        return bool(self._run("SET NX", k, lambda: self.client.set(k, value, px=_ms(ttl), nx=True)))

    def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        """Overwrite only an existing key whose guard is ``guard`` (one script call).

        ``ttl=None`` keeps the remaining TTL (``KEEPTTL``); a number resets it.
        """
        k, ms = self.prefix + key, "" if ttl is None else str(_ms(ttl))
        return bool(self._run("replace", k, lambda: self._replace(keys=[k], args=[guard, value, ms])))

    def freeze(self, key: str, token: str) -> str | None:
        """Live to rotating under ``token``, TTL kept (one script call); the value before."""
        k, args = self.prefix + key, [token, VERSION + LIVE, VERSION + ROTATING]
        return _text(self._run("freeze", k, lambda: self._freeze(keys=[k], args=args), foreign=UNREADABLE))

    def retire(self, key: str, value: str, ttl: float) -> None:
        """``SET PX``, unconditionally: the tombstone wins over whatever was there."""
        k = self.prefix + key
        self._run("SET", k, lambda: self.client.set(k, value, px=_ms(ttl)))

    def delete(self, key: str) -> None:
        """``DEL``."""
        k = self.prefix + key
        self._run("DEL", k, lambda: self.client.delete(k))

    def handover(self, move: Handover) -> Outcome:
        """Index, ``SET NX``, swap or overwrite, re-point the chain: one pipelined round trip.

        Not a transaction (no MULTI): every command is on its own key, so the
        same call works on Redis Cluster. Scripts go as ``EVAL`` (Redis caches
        them compiled): a pipeline of ``EVALSHA`` would cost redis-py an extra
        ``SCRIPT EXISTS`` round trip on every call. The order of the commands is the
        order of :meth:`Store.handover`; a command refused for the wrong type
        reads as "gone".
        """
        p = self.prefix
        pipe = self.client.pipeline(transaction=False)
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
        replies = self._run("handover", p + move.new_key, lambda: pipe.execute(raise_on_error=False))
        for reply in replies:
            if isinstance(reply, ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise StoreError(f"Redis handover failed: {_describe(reply, p + move.new_key)}")
        at = 1 if move.subject else 0
        created = replies[at] is True or _text(replies[at]) == "OK"
        if not move.old_key:
            return Outcome(created, True)
        old_reply = replies[at + 1]
        if isinstance(old_reply, ResponseError):  # another Redis type under the key
            if move.force:  # a tombstone wins over whatever was there (SET ... GET refused it)
                self.retire(move.old_key, move.old_value, move.old_ttl or 0.001)
                return Outcome(created, True, UNREADABLE)
            return Outcome(created, False, None)
        if move.force:
            return Outcome(created, True, _text(old_reply))
        if old_reply == 1:
            return Outcome(created, True)
        return Outcome(created, False, None if old_reply is None else _text(old_reply))

    # -- subject index primitives (see SubjectIndex) -----------------------------------

    def _index_add(self, index: str, key: str, ttl: float) -> None:
        k, ms = self.prefix + index, _ms(ttl)
        self._run("index add", k, lambda: self._index_add_script(keys=[k], args=[key, ms, ""]))

    def _index_members(self, index: str) -> list[str]:
        k = self.prefix + index
        members = self._run("SMEMBERS", k, lambda: self.client.smembers(k), foreign=set())
        return sorted(m for m in map(_text, members) if m is not None and m != UNREADABLE)

    def _index_remove(self, index: str, keys: list[str]) -> None:
        if keys:
            k = self.prefix + index
            self._run("SREM", k, lambda: self.client.srem(k, *keys))

    def _index_ttl(self, index: str) -> float:
        k = self.prefix + index
        ms = self._run("PTTL", k, lambda: self.client.pttl(k), foreign=-2)
        return max(0.0, int(ms) / 1000)  # -2 gone, -1 no TTL (not written by us): 0

    # -- operations --------------------------------------------------------------------

    def ping(self) -> bool:
        """True if Redis answers; StoreError otherwise. For health checks."""
        return bool(self._run("PING", "", self.client.ping))

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()

    def _run(self, op: str, key: str, call: Callable[[], Any], foreign: Any = None) -> Any:
        """Call redis-py; a wrong-type key gives ``foreign``, any failure StoreError.

        The message names the operation and the error, never the key (redacted
        should any error text quote it) nor a value.
        """
        try:
            return call()
        except UnicodeDecodeError:  # a client with decode_responses=True met non-UTF-8
            return foreign
        except ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):  # someone else's data under our key
                return foreign
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None
        except (RedisError, RedisClusterException) as exc:
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None


def _plain_client(client: Any) -> bool:
    """A standalone or Sentinel ``redis.Redis`` that shares a pool (not Cluster, not single-connection)."""
    return type(client) is redis.Redis and getattr(client, "connection", None) is None


def _send_get(conn: Any, k: str) -> Any:
    conn.send_command("GET", k)
    return conn.read_response()


def _ms(ttl: float) -> int:
    """Seconds to whole milliseconds, at least 1 (Redis refuses PX 0)."""
    if not ttl > 0:
        return 1
    if math.isinf(ttl):
        raise StoreError("Redis keys need a finite TTL: configure finite timeouts")
    return max(1, round(ttl * 1000))


def _text(value: Any) -> str | None:
    """A reply as str; bytes that are not UTF-8 (or anything else) become UNREADABLE."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return UNREADABLE


def _describe(exc: BaseException, key: str) -> str:
    """The error's class and the first line of its text, with the key cut out."""
    text = str(exc).split("\n", 1)[0]
    if key:
        text = text.replace(key, "<key>")
    text = text[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
