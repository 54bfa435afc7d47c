"""Failover under load: a master is ``kill -9``ed and no dead ID comes back to life.

Victims log in (half of them on IDs an attacker planted), half log out again,
while attackers replay every ID that is dead by then. Right after one victim's
login, the master that holds her planted ID's tombstone is killed. Replicas
acknowledged every freeze and tombstone (``WAIT``) before it counted, so after
the promotion every pre-login and logged-out ID is replayed again: none may be
resurrected. During the failover requests get 503 — never another 5xx, never
an exception, never the victim's session for an attacker — and service resumes
without restarting anything of fixguard's. The time to recover is printed.

Cluster: the killed node is started again (empty: no persistence) once its
replica has been promoted, so the new master has a replica to acknowledge
writes again; starting it before the promotion would bring it back as an empty
master, which is the one way to lose acknowledged tombstones here (see the
README, Stores: durability). Sentinel: the other replica follows the new master.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from webtest import TestApp

from fixguard.stores.redis import RedisStore

from .apps import VulnerableApp, fg_cookie, guard, plant
from .ha import TOPOLOGIES, Topology, topology
from .topologies import ClusterGroup, Node, SentinelGroup, wait_for

pytestmark = pytest.mark.slow

LOGIN_FORM = {"user": "alice", "password": "secret"}
FIXGUARD_401 = "This session has ended. Please sign in again."
BEFORE_KILL = 6  # completed logins before the kill
AFTER_RECOVERY = 0.3  # seconds of load once a login works again


@dataclass
class Load:
    """Everything the load threads saw, under one lock."""

    dead: list[str] = field(default_factory=list)  # pre-login IDs of completed logins, logged-out IDs
    in_flight: list[str] = field(default_factory=list)  # pre-login IDs of logins that got a 503
    statuses: Counter[str] = field(default_factory=Counter)
    unprotected: list[str] = field(default_factory=list)  # an attacker served the victim's session
    errors: list[str] = field(default_factory=list)  # a 5xx other than 503, or an exception
    logins: list[float] = field(default_factory=list)  # monotonic times of completed logins
    reads: list[float] = field(default_factory=list)  # ... of a victim's profile answered
    failures: list[float] = field(default_factory=list)  # ... of every 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def note(self, who: str, response: Any) -> None:
        now = time.monotonic()
        with self.lock:
            self.statuses[f"{who} {response.status_code}"] += 1
            if response.status_code == 503:
                self.failures.append(now)
            elif response.status_code >= 500:
                self.errors.append(f"{who}: {response.status_code} {response.text[:200]}")


def _victim(guarded: Any, load: Load, planted: str | None, rng: random.Random) -> tuple[str, str] | None:
    """One victim's visit: (pre-login ID, post-login ID) if her login completed."""
    client = TestApp(guarded)
    if planted is not None:
        plant(client, "fixguard", planted)
        pre = planted
    else:
        first = client.get("/", expect_errors=True)
        load.note("visit", first)
        pre = fg_cookie(first) or ""
        if not pre:
            return None
    login = client.post("/login", LOGIN_FORM, expect_errors=True)
    load.note("login", login)
    post = fg_cookie(login)
    if login.status_code != 200 or post is None:
        with load.lock:
            load.in_flight.append(pre)
        return None
    with load.lock:
        load.dead.append(pre)
        load.logins.append(time.monotonic())
    profile = client.get("/profile", expect_errors=True)
    load.note("read", profile)
    if profile.status_code == 200:
        assert profile.text == "user=alice", profile.text
        with load.lock:
            load.reads.append(time.monotonic())
    if rng.random() < 0.5:
        bye = client.post("/logout", expect_errors=True)
        load.note("logout", bye)
        if bye.status_code == 200:
            with load.lock:
                load.dead.append(post)
    return pre, post


def _attacker(guarded: Any, load: Load, seed: int) -> None:
    """Replays dead IDs until told to stop; any answer that carries a user is unprotected."""
    rng = random.Random(seed)
    while not load.stop.is_set():
        with load.lock:
            pool = load.dead + load.in_flight
        if not pool:
            time.sleep(0.005)
            continue
        replay = _replay(guarded, rng.choice(pool))
        load.note("replay", replay)


def _replay(guarded: Any, signed: str) -> Any:
    client = TestApp(guarded)
    plant(client, "fixguard", signed)
    return client.get("/profile", expect_errors=True)


def _victims(guarded: Any, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    while not load.stop.is_set():
        planted = None
        if rng.random() < 0.5:  # the attacker's own pre-login ID, planted in the victim's browser
            planted = fg_cookie(TestApp(guarded).get("/", expect_errors=True))
        _victim(guarded, load, planted, rng)


def _check_unprotected(load: Load, who: str, response: Any) -> None:
    if "user=" in response.text:
        with load.lock:
            load.unprotected.append(f"{who}: {response.status_code} {response.text[:80]}")


def _owner(topo: Topology, store: RedisStore, key: str) -> Node:
    """The master that holds ``key`` now."""
    if isinstance(topo.group, ClusterGroup):
        return topo.group.master_of(store.prefix + key)
    assert isinstance(topo.group, SentinelGroup)
    return topo.group.current_master()


def _promoted(topo: Topology, killed: Node) -> bool:
    """A replica has taken over the killed master's data."""
    if isinstance(topo.group, ClusterGroup):
        live = [node for node in topo.group.nodes if node.alive]
        if not all("cluster_state:ok" in node.ask("CLUSTER", "INFO") for node in live):
            return False
        # every live node's slot table names a live master for every range: the killed one is gone
        return all(int(entry[2][1]) != killed.port for node in live for entry in node.ask("CLUSTER", "SLOTS"))
    assert isinstance(topo.group, SentinelGroup)
    master = topo.group.current_master()
    return master is not killed and master.role() == "master"


def _session_on(guarded: Any, topo: Topology, store: RedisStore, master: Node) -> TestApp:
    """A logged-in browser whose record lives on ``master``."""
    for _ in range(200):
        client = TestApp(guarded)
        signed = fg_cookie(client.post("/login", LOGIN_FORM))
        vid = guarded.ids.verify(signed) if signed else None
        if vid is not None and _owner(topo, store, vid.key) is master:
            return client
    raise AssertionError("no session landed on the master")


def _served(client: TestApp) -> bool:
    return bool(client.get("/profile", expect_errors=True).text == "user=alice")


def _login_on(guarded: Any, topo: Topology, store: RedisStore, master: Node) -> bool:
    """A login whose pre-login ID (its freeze, its tombstone) lives on ``master``: completed?"""
    for _ in range(200):
        client = TestApp(guarded)
        first = client.get("/", expect_errors=True)
        signed = fg_cookie(first)
        vid = guarded.ids.verify(signed) if signed else None
        if vid is None:
            return False  # the store is not answering yet
        if _owner(topo, store, vid.key) is master:
            login = client.post("/login", LOGIN_FORM, expect_errors=True)
            return login.status_code == 200 and fg_cookie(login) is not None
    return False


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_failover_under_load_resurrects_no_dead_id(
    request: pytest.FixtureRequest, name: str, redis_prefix: str
) -> None:
    topo = topology(request, name)
    store = topo.store(redis_prefix)
    assert store.replicas() == 1
    app = VulnerableApp()
    outages: list[str] = []  # why the store was unavailable, latest last (for a failure's message)
    guarded = guard(
        app,
        store=store,
        on_event=lambda e: (
            outages.append(e.detail.get("reason", "")) if e.kind == "store_unavailable" else None
        ),
    )
    load = Load()

    # every response an attacker gets is checked: wrap note() for the replays
    original_note = load.note

    def note(who: str, response: Any) -> None:
        original_note(who, response)
        if who == "replay":
            _check_unprotected(load, who, response)

    load.note = note  # type: ignore[method-assign]

    rng = random.Random(1)
    while len(load.logins) < BEFORE_KILL:
        planted = fg_cookie(TestApp(guarded).get("/")) if len(load.logins) % 2 == 0 else None
        _victim(guarded, load, planted, rng)

    def guarded_run(target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # an exception through fixguard is a 500 in a real server
            with load.lock:
                where = traceback.format_exc(limit=-6)
                load.errors.append(f"{target.__name__}: {type(exc).__name__}: {exc}\n{where}")

    threads = [threading.Thread(target=guarded_run, args=(_attacker, guarded, load, n)) for n in range(2)]
    threads += [
        threading.Thread(target=guarded_run, args=(_victims, guarded, load, 10 + n)) for n in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        # the target: a victim on a planted ID, and the master that holds its tombstone dies at once
        planted = fg_cookie(TestApp(guarded).get("/"))
        assert planted
        target = _victim(guarded, load, planted, random.Random(2))
        assert target is not None, "the target's login must complete before the kill"
        vid = guarded.ids.verify(planted)
        assert vid is not None
        victim_master = _owner(topo, store, vid.key)
        witness = _session_on(guarded, topo, store, victim_master)
        victim_master.kill()
        killed_at = time.monotonic()

        # reads: a session whose record lived on the killed master is served again
        read_in = wait_for("the witness is served again", lambda: _served(witness), 30, topo.group.logs)
        wait_for("the promotion is visible", lambda: _promoted(topo, victim_master), 30, topo.group.logs)
        if isinstance(topo.group, ClusterGroup):
            victim_master.start()  # rejoins, empty, as the new master's replica
        # logins: one whose tombstone goes to the promoted master, acknowledged by a replica again
        new_master = _owner(topo, store, vid.key)
        login_in = wait_for(
            "a login on the failed-over master works",
            lambda: _login_on(guarded, topo, store, new_master),
            30,
            lambda: f"latest outages: {outages[-5:]}\n{topo.group.logs()}",
        )
        login_in += read_in
        time.sleep(AFTER_RECOVERY)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    if isinstance(topo.group, SentinelGroup):
        victim_master.start()  # Sentinel turns it into a replica of the new master

    # after the promotion: every pre-login and logged-out ID, and every interrupted login's ID, again
    resurrected = []
    for signed in load.dead:
        replay = _replay(guarded, signed)
        if replay.status_code != 401 or replay.text.strip() != FIXGUARD_401:
            resurrected.append(f"{replay.status_code} {replay.text[:80]}")
    for signed in load.in_flight:
        replay = _replay(guarded, signed)
        if "user=" in replay.text:
            resurrected.append(f"in flight: {replay.status_code} {replay.text[:80]}")
    target_replay = _replay(guarded, target[0])
    failures = [t - killed_at for t in load.failures if t > killed_at]
    print(
        f"\n[{name}] killed the master of the target's tombstone; its sessions served again after "
        f"{read_in:.2f}s, a login on it completed {login_in:.2f}s after the kill; 503s: {len(failures)} "
        f"(last {max(failures, default=0):.2f}s after the kill); {len(load.dead)} dead IDs replayed, "
        f"{len(load.in_flight)} interrupted logins; statuses {dict(load.statuses)}"
    )
    store.close()

    assert target_replay.status_code == 401 and target_replay.text.strip() == FIXGUARD_401
    assert resurrected == [], resurrected
    assert load.unprotected == [], load.unprotected
    assert load.errors == [], load.errors
    assert failures, "the failover should have been felt as 503s"
    assert load.statuses["replay 200"] == 0


@pytest.mark.parametrize("min_replicas", [0, 1])
def test_a_tombstone_only_the_dead_master_had(
    request: pytest.FixtureRequest, redis_prefix: str, min_replicas: int
) -> None:
    """The threat itself, made certain: the replica is cut off while the victim logs in, then her master dies.

    Without WAIT (``redis_min_replicas = 0``) the login completes on a tombstone
    only the master had, and the promoted replica hands the attacker's planted
    ID the victim's session. With it, the login is refused (503) before the app
    runs, so there is nothing to resurrect.
    """
    topo = topology(request, "cluster")
    cluster = topo.group
    assert isinstance(cluster, ClusterGroup)
    store = topo.store(redis_prefix, redis_min_replicas=min_replicas)
    guarded = guard(VulnerableApp(), store=store)
    planted = fg_cookie(TestApp(guarded).get("/"))
    vid = guarded.ids.verify(planted) if planted else None
    assert planted and vid is not None
    master = cluster.master_of(store.prefix + vid.key)
    replica = cluster.replica_of(master)
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted)
    replica.pause()  # stopped, it cannot reconnect...
    master.ask("CLIENT", "KILL", "TYPE", "replica")  # ...once the master drops the link: nothing reaches it
    try:
        login = victim.post("/login", LOGIN_FORM, expect_errors=True)
        master.kill()
    finally:
        replica.resume()
    wait_for("the replica is promoted", lambda: _promoted(topo, master), 30, cluster.logs)
    master.start()
    replay = _replay(guarded, planted)
    store.close()
    if min_replicas == 0:
        assert login.status_code == 200
        assert replay.text == "user=alice"  # resurrected: the fixation survived the failover
    else:
        assert login.status_code == 503 and fg_cookie(login) is None
        assert "user=" not in replay.text
