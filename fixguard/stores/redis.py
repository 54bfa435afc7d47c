"""RedisStore: the store protocol on Redis, shared by every worker and host.

Each operation is one command on one key (``GET``, ``SET NX PX``, ``SET PX``,
``DEL``) or one small Lua script on one key, so it is atomic there and works
unchanged on a standalone server, behind Sentinel, and on Redis Cluster (no
multi-key command, no hash tags). The compare-and-set scripts only read the
value's guard (the part before the first ``|``), never its JSON.

Durability: every write that makes an ID dead or inert (:meth:`RedisStore.freeze`,
:meth:`RedisStore.retire`, a forced :meth:`RedisStore.handover`) is followed by
``WAIT`` on the same connection, in the same pipeline, and must be acknowledged by
``min_replicas`` replicas within ``wait_timeout`` seconds, else StoreError
(:func:`append_wait`, :func:`check_acks`). On Redis Cluster that pipeline goes
to the node owning the key (:func:`~fixguard.stores.replication.node_pipeline`): WAIT has no key,
and a cluster pipeline would route it elsewhere.

Fail closed: anything redis-py raises becomes :class:`StoreError` (the
middleware answers 503). A value fixguard could not have written — not UTF-8,
or a key of another Redis type — comes back as a string that
:func:`fixguard.record.decode` rejects: "no session", not an outage.

redis-py is optional: ``pip install 'fixguard[redis]'``.
"""

from __future__ import annotations

import contextlib
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
from .redis_scripts import _FREEZE, _INDEX_ADD, _REPLACE, _SWAP, UNREADABLE
from .redis_scripts import describe as _describe
from .redis_scripts import ms as _ms
from .redis_scripts import text as _text
from .replication import (
    append_wait,
    check_acks,
    node_pipeline,
    redirect_or_down,
    refresh_slots,
    replicas_behind,
)

__all__ = ["UNREADABLE", "RedisStore", "append_wait", "check_acks", "replicas_behind"]
# shared with AsyncRedisStore (stores/redis_async.py), which imports them from here
__all__ += ["_FREEZE", "_INDEX_ADD", "_REPLACE", "_SWAP", "_describe", "_ms", "_text"]

Client = redis.Redis | RedisCluster

# from_url defaults: a store that does not answer within about a second is down
# (503), and one retry on a fresh connection rides over a connection dropped
# mid-command (failover, restart, a proxy's idle cut). Timeouts are not retried:
# a slow server would only get slower, and the request would wait twice as long.
DEFAULT_TIMEOUT = 1.0
DEFAULT_HEALTH_CHECK_INTERVAL = 30
#: Seconds a write that kills an ID waits for its replicas' acknowledgement.
DEFAULT_WAIT_TIMEOUT = 0.1


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
    :param min_replicas: replicas that must acknowledge (``WAIT``) each write that
        makes an ID dead or inert; None: 1 if the topology has replicas, else 0.
    :param wait_timeout: seconds ``WAIT`` may take; no acknowledgement in time is a StoreError.
    """

    def __init__(
        self,
        client: Client,
        prefix: str = "fixguard:",
        *,
        min_replicas: int | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> None:
        self.client = client
        self.prefix = prefix
        #: Replicas that must acknowledge a write that kills an ID; None: decided by
        #: :func:`replicas_behind` the first time it is needed (then kept).
        self.min_replicas = min_replicas
        self.wait_timeout = wait_timeout
        self._cluster = isinstance(client, RedisCluster)
        # The read every request makes goes straight to a pooled connection when
        # the client is a plain redis.Redis: redis-py's command layer (callbacks,
        # observability hooks) costs more than the round trip's own Python work.
        self._pool: Any = getattr(client, "connection_pool", None) if _plain_client(client) else None
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
    ) -> RedisStore:
        """A store on a new client for ``redis://``, ``rediss://`` or ``unix://`` URLs.

        ``cluster=True`` makes a ``RedisCluster`` from a seed node's URL.
        ``min_replicas`` and ``wait_timeout``: see the class.
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
        return cls(factory(url, **options), prefix, min_replicas=min_replicas, wait_timeout=wait_timeout)

    # -- the protocol ------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None: one ``GET``.

        The read every request makes: called directly, not through :meth:`_run`
        (no closure per call); its failures are mapped exactly as ``_run`` maps them.
        """
        k = self.prefix + key
        pool = self._pool
        try:
            raw = self._lean_get(pool, k) if pool is not None else self.client.get(k)
        except Exception as exc:
            raw = self._run("GET", k, _raiser(exc), foreign=UNREADABLE)
        return _text(raw)

    def _lean_get(self, pool: Any, k: str) -> Any:
        """``GET`` on a pooled connection with the connection's own Retry, nothing else."""
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
        """Live to rotating under ``token``, TTL kept (one script call); the value before.

        With replicas to wait for, ``EVAL`` and ``WAIT`` go in one pipeline: the
        app must not run a login on a freeze that a failover could undo.
        """
        k, args = self.prefix + key, [token, VERSION + LIVE, VERSION + ROTATING]
        if self.replicas() == 0:
            value = self._run("freeze", k, lambda: self._freeze(keys=[k], args=args), foreign=UNREADABLE)
            return _text(value)
        reply, acks = self._durable_write("freeze", k, lambda pipe: _eval(pipe, _FREEZE, k, *args))
        before = UNREADABLE if isinstance(reply, ResponseError) else _text(reply)  # WRONGTYPE: not ours
        try:
            check_acks(acks, self.replicas(), self.wait_timeout, "freeze")
        except StoreError:
            self._unfreeze(k, before, token)
            raise
        return before

    def _unfreeze(self, k: str, before: str | None, token: str) -> None:
        """Undo a freeze the replicas did not acknowledge (best effort): the login gets a 503
        and never runs, so the session must not stay frozen on the master."""
        if before is not None and before.startswith(VERSION + LIVE):
            guard = VERSION + ROTATING + token
            with contextlib.suppress(StoreError):
                self._run("unfreeze", k, lambda: self._replace(keys=[k], args=[guard, before, ""]))

    def retire(self, key: str, value: str, ttl: float) -> None:
        """``SET PX``, unconditionally: the tombstone wins over whatever was there (then ``WAIT``)."""
        k = self.prefix + key
        if self.replicas() == 0:
            self._run("SET", k, lambda: self.client.set(k, value, px=_ms(ttl)))
        else:
            self._durable("SET", k, lambda pipe: pipe.set(k, value, px=_ms(ttl)))

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
        reads as "gone". A forced overwrite (the rotation's tombstone) is
        followed by ``WAIT`` in the same pipeline; on Cluster it goes, with its
        ``WAIT``, to the node owning the old key, after the rest.
        """
        p = self.prefix
        durable = bool(move.old_key and move.force) and self.replicas() > 0
        split = durable and self._cluster  # the tombstone and its WAIT go to their own node
        pipe = self.client.pipeline(transaction=False)
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
            append_wait(pipe, self.replicas(), self.wait_timeout)
        replies = list(self._run("handover", p + move.new_key, lambda: pipe.execute(raise_on_error=False)))
        if durable and not split:
            check_acks(replies.pop(), self.replicas(), self.wait_timeout, "handover")
        for reply in replies:
            if isinstance(reply, ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise StoreError(f"Redis handover failed: {_describe(reply, p + move.new_key)}")
        at = 1 if move.subject else 0
        if split:
            k, ttl = p + move.old_key, _ms(move.old_ttl or 0.001)
            tomb = self._durable("handover", k, lambda node: node.set(k, move.old_value, px=ttl, get=True))
            replies.insert(at + 1, tomb)
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

    # -- durability: WAIT after what kills an ID ---------------------------------------

    def replicas(self) -> int:
        """How many replicas must acknowledge a write that kills an ID (decided once, then kept)."""
        if self.min_replicas is None:
            self.min_replicas = self._run("INFO", "", lambda: replicas_behind(self.client))
        return self.min_replicas

    def _durable(self, op: str, k: str, queue: Callable[[Any], Any]) -> Any:
        """``queue(pipe)``'s one write on ``k``, then ``WAIT``; the write's reply (WRONGTYPE as a value).

        StoreError unless ``min_replicas`` replicas acknowledged it within ``wait_timeout``.
        """
        write, acks = self._durable_write(op, k, queue)
        check_acks(acks, self.replicas(), self.wait_timeout, op)
        return write

    def _durable_write(self, op: str, k: str, queue: Callable[[Any], Any]) -> tuple[Any, Any]:
        """One round trip: ``queue(pipe)``'s write on ``k`` and ``WAIT`` on its connection; both replies.

        On Cluster, a moved slot or a dead node refreshes the slot table and
        tries once more (on the new owner), then fails closed.
        """
        replicas = self.replicas()

        def attempt() -> tuple[Any, Any]:
            pipe = node_pipeline(self.client, k)
            queue(pipe)
            append_wait(pipe, replicas, self.wait_timeout)
            write, acks = pipe.execute(raise_on_error=False)
            if isinstance(write, ResponseError) and not str(write).startswith("WRONGTYPE"):
                raise write  # MOVED, READONLY, ...: not written
            return write, acks

        if self._cluster:
            try:
                return attempt()
            except Exception as exc:  # all of them, as in _run
                if not redirect_or_down(exc):
                    raise StoreError(f"Redis {op} failed: {_describe(exc, k)}") from None
                refresh_slots(self.client)
        result: tuple[Any, Any] = self._run(op, k, attempt)
        return result

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
        except Exception as exc:  # a Cluster client before redis-py's NodesManager locking (#3803) trips
            if not self._cluster:  # over its own slot table when threads refresh it at once, as in a
                raise  # failover (RuntimeError, AttributeError): an outage as well, never a 500
            raise StoreError(f"Redis {op} failed: {_describe(exc, key)}") from None


def _raiser(exc: BaseException) -> Callable[[], Any]:
    """A call that raises ``exc`` again: lets :meth:`RedisStore._run` map an error already caught."""

    def again() -> Any:
        raise exc

    return again


def _eval(pipe: Any, script: str, key: str, *args: Any) -> None:
    """Queue ``EVAL script 1 key args``; a cluster pipeline has no ``eval()`` but routes it by key."""
    pipe.execute_command("EVAL", script, 1, key, *args)


def _plain_client(client: Any) -> bool:
    """A standalone or Sentinel ``redis.Redis`` that shares a pool (not Cluster, not single-connection)."""
    return type(client) is redis.Redis and getattr(client, "connection", None) is None


def _send_get(conn: Any, k: str) -> Any:
    conn.send_command("GET", k)
    return conn.read_response()
