"""The login window: replays during a slow login, racing logins, frozen sessions.

The app here is vulnerable on purpose: it writes the user into its server-side
session at the start of a slow login, so anything presenting the pre-login ID
while the login runs would see the victim unless fixguard closes the window.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from webtest import TestApp

from fixguard import Event, FixGuard, Store
from fixguard.core.exchange import Exchange
from fixguard.core.ops import Steps

from .apps import VulnerableApp, fg_cookie, guard


def replay_during_login(
    g: FixGuard, planted: str, victim: TestApp, attackers: int = 6
) -> list[tuple[int, str]]:
    """Attacker threads replay ``planted`` on /profile from before the login until after it."""
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def attack() -> None:
        a = TestApp(g)
        while not stop.is_set():
            r = a.get("/profile", headers={"Cookie": f"fixguard={planted}"}, expect_errors=True)
            with lock:
                results.append((r.status_int, r.text))

    threads = [threading.Thread(target=attack) for _ in range(attackers)]
    for t in threads:
        t.start()
    time.sleep(0.08)
    res = victim.post("/login", {"user": "alice", "password": "secret"})
    assert res.status_int == 200
    time.sleep(0.08)
    stop.set()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("protected", [True, False])
def test_no_replay_sees_the_victim_while_a_slow_login_runs(
    protected: bool, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against MemoryStore and the real redis-server alike."""
    vuln = VulnerableApp(login_delay=0.3, read_delay=0.03)
    events: list[Event] = []
    g = guard(vuln, settle_time=0.02, on_event=events.append, store=store)
    if not protected:
        # Control: without the freeze and the late re-check, the same attack must work,
        # or this test would prove nothing.
        monkeypatch.setattr(Exchange, "raced", never_raced)
        monkeypatch.setattr(g.store, "freeze", lambda key, token: g.store.get(key))
    victim = TestApp(g)
    planted = fg_cookie(victim.get("/"))
    assert planted is not None
    results = replay_during_login(g, planted, victim)
    leaks = [text for _, text in results if "alice" in text]
    statuses = Counter(status for status, _ in results)
    if protected:
        assert leaks == [], statuses
        assert statuses[401] > 0  # anonymous while frozen, then the tombstone
        assert {e.kind for e in events} >= {"frozen_request", "fixation_blocked", "rotation"}
        assert victim.get("/profile").text == "user=alice"
    else:
        assert leaks, "the control run should have leaked; the test has lost its teeth"


def test_replay_that_read_before_the_freeze_gets_409(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request already past its lookup when the login froze the record must not answer with data."""
    vuln = VulnerableApp(login_delay=0.2)
    events: list[Event] = []
    g = guard(vuln, settle_time=0.02, on_event=events.append)
    victim = TestApp(g)
    planted = fg_cookie(victim.get("/"))
    assert planted is not None
    started = threading.Event()
    original_get_profile = vuln.__call__

    def slow_profile(environ: dict[str, Any], sr: Any) -> Any:
        if environ["PATH_INFO"] == "/slow-profile":
            started.set()
            time.sleep(0.1)  # the victim's login freezes and writes meanwhile
            environ["PATH_INFO"] = "/profile"
        return original_get_profile(environ, sr)

    g.app = slow_profile
    out: list[Any] = []
    t = threading.Thread(
        target=lambda: out.append(
            TestApp(g).get("/slow-profile", headers={"Cookie": f"fixguard={planted}"}, expect_errors=True)
        )
    )
    t.start()
    started.wait()
    victim.post("/login", {"user": "alice", "password": "secret"})
    t.join()
    assert out[0].status_int == 409
    assert "alice" not in out[0].text
    assert "race_blocked" in [e.kind for e in events]


def test_request_on_frozen_id_is_anonymous_and_inert() -> None:
    vuln = VulnerableApp(login_delay=0.3)
    g = guard(vuln)
    victim = TestApp(g)
    planted = fg_cookie(victim.get("/"))
    th = threading.Thread(target=lambda: victim.post("/login", {"password": "secret"}))
    th.start()
    time.sleep(0.1)
    res = TestApp(g).get("/", headers={"Cookie": f"fixguard={planted}"})
    th.join()
    frozen_view = [s for s in vuln.seen if s["session"] is not None and s["session"].state == "frozen"]
    assert frozen_view and frozen_view[0]["cookie"] == ""
    assert res.headers.getall("Set-Cookie") == []  # neither sets nor clears fixguard's cookie


def test_two_logins_racing_on_one_pre_login_id_each_get_their_own(store: Store) -> None:
    vuln = VulnerableApp(login_delay=0.2)
    g = guard(vuln, store=store)
    first = TestApp(g)
    planted = fg_cookie(first.get("/"))
    assert planted is not None
    results: list[Any] = []

    def login(user: str) -> None:
        res = TestApp(g).post(
            "/login", {"user": user, "password": "secret"}, headers={"Cookie": f"fixguard={planted}"}
        )
        results.append((user, fg_cookie(res)))

    threads = [threading.Thread(target=login, args=(u,)) for u in ("alice", "mallory")]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    ids = {cookie for _, cookie in results}
    assert len(ids) == 2 and planted not in ids and None not in ids
    for user, cookie in results:  # nobody shares a record
        assert TestApp(g).get("/profile", headers={"Cookie": f"fixguard={cookie}"}).text == f"user={user}"
    replay = TestApp(g).get("/profile", headers={"Cookie": f"fixguard={planted}"}, expect_errors=True)
    assert replay.status_int == 401 and "user=" not in replay.text


def test_parallel_requests_at_renewal_all_succeed_and_agree(store: Store) -> None:
    """Symfony's remember-me race (symfony/symfony#42343): nobody is logged out, one newest ID."""
    vuln = VulnerableApp(read_delay=0.01)
    g = guard(vuln, store=store, renew_after=0.2, renew_grace=2)
    t = TestApp(g)
    t.get("/")
    old = fg_cookie(t.post("/login", {"password": "secret"}))
    assert old is not None
    time.sleep(0.25)
    barrier = threading.Barrier(8)
    out: list[tuple[int, str, str | None]] = []
    lock = threading.Lock()

    def browser_request() -> None:
        barrier.wait()
        r = TestApp(g).get("/profile", headers={"Cookie": f"fixguard={old}"}, expect_errors=True)
        with lock:
            out.append((r.status_int, r.text, fg_cookie(r)))

    threads = [threading.Thread(target=browser_request) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(status == 200 and text == "user=alice" for status, text, _ in out), out
    told = {cookie for _, _, cookie in out}
    assert len(told) == 1 and None not in told and old not in told
    [newest] = told
    assert TestApp(g).get("/profile", headers={"Cookie": f"fixguard={newest}"}).text == "user=alice"


def never_raced(self: Exchange) -> Steps[bool]:
    """The late re-check switched off: a step that asks the store nothing and says "no race"."""
    yield from ()
    return False
