"""WAIT in the ASGI middleware's AsyncRedisStore, on a real master with one (paused) replica.

The twin of tests/test_durability.py: the replica is paused (SIGSTOP) so that
``WAIT 1`` times out, and the Starlette example app behind FixGuardMiddleware
shows what fixguard does with the StoreError. An unacknowledged freeze is a 503
before the app runs, and undone; an unacknowledged tombstone is a 503 after the
app ran, with no new ID; a logout and a revoke fail loudly.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fixguard
from fixguard import Event
from fixguard.stores.base import StoreError
from fixguard.stores.redis_async import AsyncRedisStore

from .asgi_support import GUARD, Browser

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
asgi_app = importlib.import_module("examples.asgi_app")

KEY = "k" * 48
ALICE = {"username": "alice", "password": "secret"}
WAIT_TIMEOUT = 0.2  # as in test_durability: a healthy replica on a shared machine must not miss it
LOGINS = {"rule": {}, "detected": {"login": ()}}


@pytest.fixture
def pair(redis_replicated: Any) -> Iterator[Any]:
    asgi_app.reset()
    redis_replicated.resume()
    yield redis_replicated
    redis_replicated.resume()


class Recorder:
    """The app, recording the paths it ran; the replica stops acknowledging while ``pause_on`` runs.

    ``subject``: a login also names its user to fixguard (so ``sessions`` and ``revoke`` find it).
    """

    def __init__(self, pair: Any, pause_on: str = "", subject: bool = False) -> None:
        self.app, self.pair, self.pause_on = asgi_app.create_app(), pair, pause_on
        self.subject = subject
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
            if self.subject and scope["path"] == "/login":
                fixguard.signal(scope, "login", subject="alice")
            if scope["path"] == self.pause_on:
                self.pair.pause()
        await self.app(scope, receive, send)


def run(
    pair: Any, prefix: str, scenario: Callable[[AsyncRedisStore], Awaitable[None]], **options: Any
) -> None:
    """``scenario(store)`` on a fresh loop, with an AsyncRedisStore on the pair's master."""

    async def main() -> None:
        store = AsyncRedisStore.from_url(pair.url, prefix=prefix, wait_timeout=WAIT_TIMEOUT, **options)
        try:
            await scenario(store)
        finally:
            pair.resume()
            await store.close()

    asyncio.run(main())


def protect(app: Any, store: AsyncRedisStore, events: list[Event] | None = None, **options: Any) -> Any:
    if events is not None:
        options["on_event"] = events.append
    return asgi_app.protect(app, secret_key=KEY, secure=False, store=store, **options)


def test_the_topology_decides_the_default(pair: Any, redis_server: Any, redis_prefix: str) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        assert store.min_replicas is None  # decided on first need
        assert await store.replicas() == 1
        alone = AsyncRedisStore.from_url(redis_server.url)
        try:
            assert await alone.replicas() == 0
        finally:
            await alone.close()

    redis_server.start()
    run(pair, redis_prefix, scenario)


@pytest.mark.parametrize("login", list(LOGINS))
def test_an_unacknowledged_freeze_is_a_503_before_the_app_runs(
    pair: Any, redis_prefix: str, login: str
) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        app, events = Recorder(pair), []
        client = Browser(protect(app, store, events, **LOGINS[login]))
        assert (await client.get("/")).status_code == 200
        planted = client.cookies[GUARD]
        pair.pause()
        try:
            refused = await client.post("/login", data=ALICE)
        finally:
            pair.resume()
        assert refused.status_code == 503 and "set-cookie" not in refused.headers
        assert app.seen == ["/"]  # the login never reached the app
        assert "store_unavailable" in [event.kind for event in events]
        # the freeze was undone: the same session goes on (the app's sid is the one it made)
        again = await client.get("/")
        assert again.status_code == 200 and client.cookies[GUARD] == planted
        assert len(asgi_app.SESSIONS) == 1
        ok = await client.post("/login", data=ALICE)
        assert ok.status_code == 200 and ok.text == "welcome"
        assert client.cookies[GUARD] != planted

    run(pair, redis_prefix, scenario)


@pytest.mark.parametrize("login", list(LOGINS))
def test_an_unacknowledged_tombstone_is_a_503_and_no_new_id(pair: Any, redis_prefix: str, login: str) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        app = Recorder(pair, pause_on="/login")
        guarded = protect(app, store, **LOGINS[login])
        attacker, victim = Browser(guarded), Browser(guarded)
        await attacker.get("/")
        planted = attacker.cookies[GUARD]
        victim.cookies[GUARD] = planted
        refused = await victim.post("/login", data=ALICE)
        pair.resume()
        assert app.seen == ["/", "/login"]  # the app ran the login...
        assert refused.status_code == 503  # ...but its answer is replaced
        assert "set-cookie" not in refused.headers and "welcome" not in refused.text
        # the planted ID is dead on the master all the same: the attacker gets nothing
        replay = await attacker.get("/profile")
        assert replay.status_code == 401 and "alice" not in replay.text

    run(pair, redis_prefix, scenario)


def test_an_unacknowledged_logout_is_a_503_and_a_revoke_raises(pair: Any, redis_prefix: str) -> None:
    async def scenario(store: AsyncRedisStore) -> None:
        client = Browser(protect(Recorder(pair, pause_on="/logout", subject=True), store))
        await client.get("/")
        assert (await client.post("/login", data=ALICE)).status_code == 200
        bye = await client.post("/logout")
        pair.resume()
        assert bye.status_code == 503 and "set-cookie" not in bye.headers
        again = Browser(client.app)
        await again.get("/")
        assert (await again.post("/login", data=ALICE)).status_code == 200
        assert len(await store.sessions("alice")) == 1
        pair.pause()
        with pytest.raises(StoreError, match="0 of 1 replicas acknowledged"):
            await store.revoke("alice")

    run(pair, redis_prefix, scenario)


def test_every_write_that_kills_an_id_is_waited_for(pair: Any, redis_prefix: str) -> None:
    """A login waits twice (its freeze, its tombstone), a logout once; reads never."""
    master = pair.master.client()

    def calls() -> int:
        return int(master.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))

    async def scenario(store: AsyncRedisStore) -> None:
        client = Browser(protect(Recorder(pair), store))
        await client.get("/")
        await store.replicas()

        async def waits(request: Awaitable[Any]) -> int:
            before = calls()
            assert (await request).status_code == 200
            return calls() - before

        assert await waits(client.post("/login", data=ALICE)) == 2
        assert await waits(client.get("/profile")) == 0
        assert await waits(client.post("/logout")) == 1

    try:
        run(pair, redis_prefix, scenario)
    finally:
        master.close()
