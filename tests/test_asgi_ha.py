"""The ASGI middleware's AsyncRedisStore on Redis Cluster (3+3) and Sentinel (1+2, 3 Sentinels).

Configured as a deployment configures it (the ``redis_*`` settings with
``asynchronous=True``, what FixGuardMiddleware does), the attack must fail
through each topology with a login rule and with credential detection alone,
and a renewal must work: its swap and the rotation's tombstone are pipelined
scripts, which redis.asyncio's cluster pipeline only takes as ``EVAL``
commands. Every store waits for one replica (what the topology gives).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fixguard import Event
from fixguard.redis_settings import make_store
from fixguard.stores.redis_async import AsyncRedisStore

from .asgi_support import GUARD, Browser
from .ha import TOPOLOGIES, Topology, topology

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
asgi_app = importlib.import_module("examples.asgi_app")

pytestmark = pytest.mark.slow

KEY = "k" * 48
ALICE = {"username": "alice", "password": "secret"}


@pytest.fixture(params=TOPOLOGIES)
def topo(request: pytest.FixtureRequest) -> Topology:
    asgi_app.reset()
    return topology(request, request.param)


def run(topo: Topology, prefix: str, scenario: Callable[[AsyncRedisStore], Awaitable[None]]) -> None:
    """``scenario(store)`` on a fresh loop, the store made from the topology's settings."""

    async def main() -> None:
        store = make_store({**topo.settings, "redis_prefix": prefix}, asynchronous=True)
        assert isinstance(store, AsyncRedisStore)
        try:
            await scenario(store)
            assert store.min_replicas == 1  # asked of the topology: every master has a replica
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["rule", "detected"])
def test_the_asgi_attack_fails_through_the_topology(topo: Topology, redis_prefix: str, mode: str) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        events: list[Event] = []
        options: dict[str, Any] = {"login": ()} if mode == "detected" else {}
        app = asgi_app.protect(
            asgi_app.create_app(),
            secret_key=KEY,
            secure=False,
            store=store,
            on_event=events.append,
            **options,
        )
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        planted = attacker.cookies[GUARD]
        victim.cookies[GUARD] = planted
        assert (await victim.post("/login", data=ALICE)).text == "welcome"
        assert victim.cookies[GUARD] != planted
        assert (await victim.get("/profile")).text == "user=alice"
        replay = await attacker.get("/profile")
        assert replay.status_code == 401 and "alice" not in replay.text
        assert [e.detail["reason"] for e in events if e.kind == "fixation_blocked"] == ["login"]

    run(topo, redis_prefix, scenario)


def test_renewal_through_the_topology(topo: Topology, redis_prefix: str) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        app = asgi_app.protect(
            asgi_app.create_app(), secret_key=KEY, secure=False, store=store, renew_after=0.2, renew_grace=0.6
        )
        client = Browser(app)
        await client.get("/")
        assert (await client.post("/login", data=ALICE)).text == "welcome"
        old = client.cookies[GUARD]
        await asyncio.sleep(0.25)
        renewed = await client.get("/profile")
        new = client.cookies[GUARD]
        assert renewed.text == "user=alice" and new != old
        parallel = Browser(app)
        parallel.cookies[GUARD] = old
        late = await parallel.get("/profile")  # within the grace window: served, told the newest ID
        assert late.text == "user=alice" and parallel.cookies[GUARD] == new
        await asyncio.sleep(0.65)
        stale = Browser(app)
        stale.cookies[GUARD] = old
        assert "alice" not in (await stale.get("/profile")).text
        assert (await client.get("/profile")).text == "user=alice"

    run(topo, redis_prefix, scenario)
