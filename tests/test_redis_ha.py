"""fixguard on Redis Cluster (3 masters, 3 replicas) and Sentinel (1 master, 2 replicas, 3 Sentinels).

Each topology is configured the way a deployment configures it (settings, not
a hand-built client), and everything that works on one Redis must work the
same through it: the fixation attack with rules and with credential detection,
``fixguard sessions`` list and revoke, renewal, and real gunicorn with the
hooks. Every store here waits for one replica (the default the topology gives).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from webtest import TestApp

from fixguard import Event
from fixguard.cli import main
from fixguard.stores.redis import RedisStore

from .apps import VulnerableApp, fg_cookie, guard, plant
from .ha import TOPOLOGIES, Topology, topology
from .servers import HOST, REPO, TIMEOUT, Gunicorns

pytestmark = pytest.mark.slow

FIXGUARD_401 = "This session has ended. Please sign in again."


@pytest.fixture(params=TOPOLOGIES)
def topo(request: pytest.FixtureRequest) -> Topology:
    return topology(request, request.param)


@pytest.fixture
def store(topo: Topology, redis_prefix: str) -> Iterator[RedisStore]:
    store = topo.store(redis_prefix)
    assert store.min_replicas == 1  # asked of the topology at start-up: every master has a replica
    yield store
    store.close()


def _form_login(client: TestApp) -> Any:
    return client.post("/login", {"user": "alice", "password": "secret"})


# (login rules, how the victim logs in): a rule, credential detection alone, the app's header, its call
SHAPES: dict[str, tuple[tuple[str, ...], Callable[[TestApp], Any]]] = {
    "rule": (("POST /login",), _form_login),
    "detected": ((), _form_login),
    "header": ((), lambda client: client.get("/header-login")),
    "call": ((), lambda client: client.get("/call-login")),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_attack_fails_through_the_topology(store: RedisStore, shape: str) -> None:
    login, log_in = SHAPES[shape]
    events: list[Event] = []
    guarded = guard(VulnerableApp(), store=store, login=login, on_event=events.append)
    attacker = TestApp(guarded)
    planted = fg_cookie(attacker.get("/"))
    assert planted
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted)
    answer = log_in(victim)
    assert answer.status_code == 200
    post_login = fg_cookie(answer)
    assert post_login not in (None, planted)
    assert victim.get("/profile").text == "user=alice"

    replay = attacker.get("/profile", expect_errors=True)
    assert replay.status_code == 401 and replay.text.strip() == FIXGUARD_401
    assert [e.detail["reason"] for e in events if e.kind == "fixation_blocked"] == ["login"]

    bye = victim.post("/logout")
    assert bye.status_code == 200
    for dead in (planted, post_login):
        again = TestApp(guarded)
        plant(again, "fixguard", dead)
        assert again.get("/profile", expect_errors=True).status_code == 401


def test_sessions_and_revoke_through_the_topology(
    topo: Topology,
    store: RedisStore,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    guarded = guard(VulnerableApp(), store=store)
    browsers = []
    for _ in range(3):  # three devices, their index and records spread over the nodes
        browser = TestApp(guarded)
        assert browser.get("/header-login").status_code == 200
        browsers.append(browser)
    for name in list(os.environ):
        if name.upper().startswith("FIXGUARD_"):
            monkeypatch.delenv(name)
    for name, value in {**topo.env, "FIXGUARD_REDIS_PREFIX": redis_prefix}.items():
        monkeypatch.setenv(name, value)

    assert main(["sessions", "list", "alice"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 live sessions of 'alice'")
    assert ("Cluster" if topo.name == "cluster" else "via Sentinel") in out
    assert main(["sessions", "revoke", "alice"]) == 0
    assert capsys.readouterr().out.startswith("Revoked 3 sessions of 'alice'")
    for browser in browsers:
        refused = browser.get("/profile", expect_errors=True)
        assert refused.status_code == 401 and refused.text.strip() == FIXGUARD_401
    assert store.sessions("alice") == []


def test_renewal_through_the_topology(store: RedisStore) -> None:
    guarded = guard(VulnerableApp(), store=store, renew_after=0.2, renew_grace=0.6)
    client = TestApp(guarded)
    old = fg_cookie(_form_login(client))
    assert old
    time.sleep(0.25)
    renewed = client.get("/profile")
    new = fg_cookie(renewed)
    assert renewed.text == "user=alice" and new not in (None, old)
    parallel = TestApp(guarded)
    plant(parallel, "fixguard", old)
    late = parallel.get("/profile")  # within the grace window: served, and told the newest ID
    assert late.text == "user=alice" and fg_cookie(late) == new
    time.sleep(0.65)
    stale = TestApp(guarded)
    plant(stale, "fixguard", old)
    assert stale.get("/profile", expect_errors=True).text == "anonymous"
    assert client.get("/profile").text == "user=alice"


def test_gunicorn_with_the_hooks_through_the_topology(
    topo: Topology, redis_server: Any, tmp_path: Path
) -> None:
    """Real gunicorn, 2 workers, fixguard from the hooks configured by FIXGUARD_* variables only.

    The app (``tests.e2e_ha_app``) keeps its own sessions in the tests' single Redis; fixguard
    keeps its records in the topology.
    """
    redis_server.start()
    prefix = f"ha-e2e-{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FIXGUARD_")}
    env.update(
        HA_E2E_REDIS_URL=redis_server.url,
        HA_E2E_PREFIX=prefix,
        FIXGUARD_SECRET_KEY=secrets.token_urlsafe(48),
        FIXGUARD_SECURE="false",
        FIXGUARD_APP_COOKIES="session",
        FIXGUARD_REDIS_PREFIX=prefix + "fg:",
        **topo.env,
    )
    with Gunicorns(tmp_path) as pool:
        server = pool.start(
            topo.name, "tests.e2e_ha_app:app", env, workers=2, config=REPO / "examples" / "gunicorn.conf.py"
        )
        server.wait_ready(
            within=20, probe=lambda base: requests.get(base + "/profile", timeout=1).status_code == 401
        )
        base = server.base
        attacker, victim = requests.Session(), requests.Session()
        assert attacker.get(base + "/", timeout=TIMEOUT).status_code == 200
        planted = attacker.cookies.get("fixguard")
        assert planted and "session" not in attacker.cookies
        victim.cookies.set("fixguard", planted, domain=HOST, path="/")
        login = victim.post(base + "/login", auth=("alice", "secret"), timeout=TIMEOUT, allow_redirects=False)
        assert login.status_code == 200 and login.text == "Logged in as alice\n"
        assert victim.cookies.get("fixguard") not in (None, planted)
        for _ in range(4):  # whichever worker answers
            assert victim.get(base + "/profile", timeout=TIMEOUT).text == "Profile of alice\n"
            replay = attacker.get(base + "/profile", timeout=TIMEOUT)
            assert replay.status_code == 401 and replay.text.strip() == FIXGUARD_401
        log = server.log_text()
    described = "(Cluster)" if topo.name == "cluster" else "(via Sentinel, master 'mymaster')"
    assert f"store: RedisStore {described}" in log, log
