"""WAIT after every write that makes an ID dead or inert, on a real master with one replica.

The replica is paused (SIGSTOP) to withhold its acknowledgement: it stays
connected, so ``WAIT 1`` times out exactly as it would when the replica lags
or is cut off. Each test then checks what the middleware does with that
StoreError: a login whose freeze is not acknowledged gets a 503 before the app
runs; a login whose tombstone is not acknowledged gets a 503 after it ran, and
no new ID; a logout and a revoke fail loudly. And a record that is simply
missing (what a failover that lost a write leaves) never lets an ID in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from webtest import TestApp

from fixguard import Event, FixGuard
from fixguard.stores.base import Store, StoreError
from fixguard.stores.redis import RedisStore

from .apps import VulnerableApp, fg_cookie, guard, plant

LOGIN_FORM = {"user": "alice", "password": "secret"}
WAIT_TIMEOUT = 0.2  # above the 0.1 s default: the machine is shared, a healthy replica must not miss it


@pytest.fixture
def pair(redis_replicated: Any) -> Iterator[Any]:
    redis_replicated.resume()
    yield redis_replicated
    redis_replicated.resume()


@pytest.fixture
def store(pair: Any, redis_prefix: str) -> Iterator[RedisStore]:
    redis_store = RedisStore.from_url(pair.url, prefix=redis_prefix, wait_timeout=WAIT_TIMEOUT)
    yield redis_store
    redis_store.close()


class PausesReplica:
    """The app, but the replica stops acknowledging while ``path`` runs (a lag, a cut link)."""

    def __init__(self, app: Any, pair: Any, path: str) -> None:
        self.app, self.pair, self.path = app, pair, path

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == self.path:
            self.pair.pause()
        return self.app(environ, start_response)


def _login(client: TestApp, **kwargs: Any) -> Any:
    return client.post("/login", LOGIN_FORM, expect_errors=True, **kwargs)


def test_the_topology_decides_the_default(store: RedisStore, redis_server: Any) -> None:
    assert store.min_replicas is None  # decided on first need: Redis need not answer at start-up
    assert store.replicas() == 1
    redis_server.start()
    alone = RedisStore.from_url(redis_server.url)
    try:
        assert alone.replicas() == 0
    finally:
        alone.close()


@pytest.mark.parametrize("login", [("POST /login",), ()], ids=["rule", "detected"])
def test_an_unacknowledged_freeze_is_a_503_before_the_app_runs(
    store: RedisStore, pair: Any, login: tuple[str, ...]
) -> None:
    app = VulnerableApp()
    events: list[Event] = []
    client = TestApp(guard(app, store=store, login=login, on_event=events.append))
    pre = client.get("/")
    planted = fg_cookie(pre)
    assert planted
    pair.pause()
    try:
        refused = _login(client)
    finally:
        pair.resume()
    assert refused.status_code == 503
    assert fg_cookie(refused) is None
    assert [seen["path"] for seen in app.seen] == ["/"]  # the login never reached the app
    assert "store_unavailable" in [event.kind for event in events]
    # the freeze was undone: the session goes on, and the login works once the replica answers
    again = client.get("/")
    assert again.status_code == 200 and "sid=s1" in again.text
    ok = _login(client)
    assert ok.status_code == 200, [e.detail for e in events if e.kind == "store_unavailable"]
    assert fg_cookie(ok) not in (None, planted)


@pytest.mark.parametrize("login", [("POST /login",), ()], ids=["rule", "detected"])
def test_an_unacknowledged_tombstone_is_a_503_and_no_new_id(
    store: RedisStore, pair: Any, login: tuple[str, ...]
) -> None:
    app = VulnerableApp()
    guarded = guard(PausesReplica(app, pair, "/login"), store=store, login=login)
    attacker = TestApp(guarded)
    planted = fg_cookie(attacker.get("/"))
    assert planted
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted)
    try:
        refused = _login(victim)
    finally:
        pair.resume()
    assert [seen["path"] for seen in app.seen] == ["/", "/login"]  # the app ran the login...
    assert refused.status_code == 503  # ...but its answer is replaced
    assert fg_cookie(refused) is None and "logged in" not in refused.text
    assert "Set-Cookie" not in refused.headers
    # the planted ID is dead on the master all the same: the attacker gets nothing
    replay = TestApp(guarded)
    plant(replay, "fixguard", planted)
    assert replay.get("/profile", expect_errors=True).status_code == 401


def test_an_unacknowledged_logout_is_a_503(store: RedisStore, pair: Any) -> None:
    client = TestApp(guard(PausesReplica(VulnerableApp(), pair, "/logout"), store=store))
    signed = fg_cookie(_login(client))
    assert signed
    try:
        bye = client.post("/logout", expect_errors=True)
    finally:
        pair.resume()
    assert bye.status_code == 503 and "Set-Cookie" not in bye.headers


def test_an_unacknowledged_revoke_raises(store: RedisStore, pair: Any) -> None:
    guarded = FixGuard(VulnerableApp(), "k" * 48, secure=False, store=store)
    client = TestApp(guarded)
    client.get("/header-login")
    assert len(store.sessions("alice")) == 1
    pair.pause()
    try:
        with pytest.raises(StoreError, match="0 of 1 replicas acknowledged"):
            store.revoke("alice")
    finally:
        pair.resume()


def test_every_write_that_kills_an_id_is_waited_for(store: RedisStore, pair: Any) -> None:
    """A login waits twice (its freeze, its tombstone), a logout once; reads never."""
    client = pair.master.client()
    app = TestApp(guard(VulnerableApp(), store=store))
    app.get("/")
    store.replicas()

    def waits(request: Any) -> int:
        before = client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
        assert request().status_code == 200
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)) - int(before)

    try:
        assert waits(lambda: _login(app)) == 2
        assert waits(lambda: app.get("/profile")) == 0
        assert waits(lambda: app.post("/logout")) == 1
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_missing_record_never_lets_an_id_in(kind: str, redis_server: Any, redis_prefix: str) -> None:
    """What a failover that lost a write leaves behind is a missing key: it reads as unknown.

    The ID gets no session (the app sees an anonymous request) and is never
    given one: what the app then sets lands under a fresh ID.
    """
    store: Store
    if kind == "memory":
        from fixguard.stores.memory import MemoryStore

        store = MemoryStore()
    else:
        redis_server.start()
        store = RedisStore.from_url(redis_server.url, prefix=redis_prefix)
    events: list[Event] = []
    app = VulnerableApp()
    guarded = guard(app, store=store, on_event=events.append)
    victim = TestApp(guarded)
    signed = fg_cookie(_login(victim))
    assert signed and victim.get("/profile").text == "user=alice"
    vid = guarded.ids.verify(signed)
    assert vid is not None
    store.delete(vid.key)  # the record is gone, as if the write never reached the promoted replica
    replay = TestApp(guarded)
    plant(replay, "fixguard", signed)
    lost = replay.get("/profile", expect_errors=True)
    assert lost.status_code == 401 and lost.text == "anonymous"  # the app's own: no session at all
    assert any(e.kind == "expired" and e.detail.get("reason") == "unknown" for e in events)
    fresh = fg_cookie(lost)
    assert fresh is not None and fresh != signed  # the app's new session got a new ID
    assert store.get(vid.key) is None
    if isinstance(store, RedisStore):
        store.close()


def test_fixguard_sessions_revoke_says_an_unacknowledged_revoke_may_be_incomplete(
    store: RedisStore, pair: Any, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from fixguard.cli import main

    client = TestApp(FixGuard(VulnerableApp(), "k" * 48, secure=False, store=store))
    client.get("/header-login")
    for name in list(os.environ):
        if name.upper().startswith("FIXGUARD_"):
            monkeypatch.delenv(name)  # the operator's shell: this deployment's variables only
    monkeypatch.setenv("FIXGUARD_REDIS_URL", pair.url)
    monkeypatch.setenv("FIXGUARD_REDIS_PREFIX", redis_prefix)
    monkeypatch.setenv("FIXGUARD_REDIS_WAIT_TIMEOUT", str(WAIT_TIMEOUT))
    pair.pause()
    try:
        status = main(["sessions", "revoke", "alice"])
    finally:
        pair.resume()
    err = capsys.readouterr().err
    assert status == 2, err
    assert "0 of 1 replicas acknowledged" in err and "The revoke may be incomplete: run it again" in err
