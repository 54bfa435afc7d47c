"""AsyncRedisStore: the store contract on redis.asyncio, and one Redis shared with RedisStore.

Every test of :mod:`tests.test_store_contract` runs here again, on a store
whose every operation goes through AsyncRedisStore's coroutines (on an event
loop of their own, called from the contract's threads). Then what only the
async store has: coroutines for ``sessions``/``revoke``, ``from_url``'s
timeouts and retry, fail closed, and the same keys and values as RedisStore.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from fixguard import StoreError
from fixguard.record import LIVE, decode
from fixguard.stores.base import Handover, Outcome, SessionSummary
from fixguard.stores.redis import RedisStore
from fixguard.stores.redis_async import AsyncRedisStore

from . import test_store_contract as contract
from .conftest import RedisServer

T = TypeVar("T")

# The whole contract, collected again in this module, where ``store`` is the async one.
for _name in dir(contract):
    if _name.startswith("test_"):
        globals()[_name] = getattr(contract, _name)


class AsyncBacked(RedisStore):
    """A RedisStore whose operations all run AsyncRedisStore's coroutines (for the contract).

    It is a RedisStore only so that the contract's ``plant`` can write raw
    values with the synchronous client; no operation uses that client.
    """

    def __init__(self, client: Any, inner: AsyncRedisStore, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(client, inner.prefix)
        self.inner = inner
        self.loop = loop

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def get(self, key: str) -> str | None:
        return self._wait(self.inner.get(key))

    def create(self, key: str, value: str, ttl: float) -> bool:
        return self._wait(self.inner.create(key, value, ttl))

    def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
        return self._wait(self.inner.replace(key, guard, value, ttl))

    def freeze(self, key: str, token: str) -> str | None:
        return self._wait(self.inner.freeze(key, token))

    def retire(self, key: str, value: str, ttl: float) -> None:
        self._wait(self.inner.retire(key, value, ttl))

    def delete(self, key: str) -> None:
        self._wait(self.inner.delete(key))

    def handover(self, move: Handover) -> Outcome:
        return self._wait(self.inner.handover(move))

    def link(self, subject: str, key: str, ttl: float) -> None:
        self._wait(self.inner.link(subject, key, ttl))

    def sessions(self, subject: str) -> list[SessionSummary]:
        return self._wait(self.inner.sessions(subject))

    def revoke(self, subject: str) -> int:
        return self._wait(self.inner.revoke(subject))


@pytest.fixture
def store(redis_server: RedisServer, redis_prefix: str) -> Iterator[AsyncBacked]:
    redis_server.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    inner = AsyncRedisStore.from_url(redis_server.url, prefix=redis_prefix)
    client = redis_server.client()
    try:
        yield AsyncBacked(client, inner, loop)
    finally:
        asyncio.run_coroutine_threadsafe(inner.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        client.close()


def test_sessions_and_revoke_are_coroutines() -> None:
    assert inspect.iscoroutinefunction(AsyncRedisStore.sessions)
    assert inspect.iscoroutinefunction(AsyncRedisStore.revoke)


def test_from_url_has_redisstores_timeouts_and_retry() -> None:
    sync = RedisStore.from_url("redis://127.0.0.1:1/0")
    store = AsyncRedisStore.from_url("redis://127.0.0.1:1/0")
    mine, theirs = (
        store.client.connection_pool.connection_kwargs,
        sync.client.connection_pool.connection_kwargs,
    )
    for option in ("socket_timeout", "socket_connect_timeout", "health_check_interval"):
        assert mine[option] == theirs[option], option
    assert mine["retry"]._retries == theirs["retry"]._retries == 1
    assert (
        AsyncRedisStore.from_url(
            "redis://127.0.0.1:1/0", socket_timeout=3
        ).client.connection_pool.connection_kwargs["socket_timeout"]
        == 3
    )
    sync.close()


def test_a_redis_that_does_not_answer_is_a_store_error() -> None:
    async def scenario() -> None:
        store = AsyncRedisStore.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        with pytest.raises(StoreError) as caught:
            await store.get("some-session-key")
        assert "some-session-key" not in str(caught.value)
        await store.close()

    asyncio.run(scenario())


def test_one_redis_serves_both_stores(redis_server: RedisServer, redis_prefix: str) -> None:
    """Same keys, same values, same scripts: what one writes, the other reads and swaps."""
    sync = RedisStore.from_url(redis_server.url, prefix=redis_prefix)
    value = contract.live(data="shared")

    async def scenario() -> None:
        store = AsyncRedisStore.from_url(redis_server.url, prefix=redis_prefix)
        assert await store.create("k1", value, 5)
        raw = redis_server.client()
        assert raw.get(redis_prefix + "k1") == value.encode()  # the very key and value RedisStore uses
        raw.close()
        assert sync.get("k1") == value
        assert sync.freeze("k1", "tok") == value
        frozen = await store.get("k1")
        assert frozen is not None and decode(frozen).token == "tok"
        fresh = contract.live(data="next")
        move = Handover(
            "k2",
            fresh,
            5,
            old_key="k1",
            old_value=contract.tomb(),
            force=True,
            subject="alice",
            subject_ttl=5,
        )
        outcome = sync.handover(move)
        assert outcome.created and await store.get("k2") == fresh
        assert [s.fingerprint for s in await store.sessions("alice")] == ["k2"]
        assert await store.revoke("alice") == 1
        assert decode(sync.get("k2") or "").state != LIVE
        await store.close()

    asyncio.run(scenario())
    sync.close()
