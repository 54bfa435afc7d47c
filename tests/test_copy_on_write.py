"""IDs are immutable: a write moves the session to a new ID, the old one keeps its snapshot.

Each test runs on MemoryStore and on the suite's own redis-server (the
``store`` fixture). The app is ``tiny_app`` from conftest: ``/set?v=X`` sets the
app's ``session`` cookie to X, ``/whoami`` answers the value it received.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from webtest import TestApp

from fixguard import Event, FixGuard
from fixguard.record import RETIRED, SNAPSHOT, decode
from fixguard.stores.base import Store

from .apps import VulnerableApp, fg_cookie, guard
from .conftest import tiny_app


def ask(app: Any, path: str, cookie: str | None, method: str = "GET", **kw: Any) -> Any:
    """One request presenting ``cookie`` (or none), from a client with no memory."""
    headers = {"Cookie": f"fixguard={cookie}"} if cookie else {}
    return TestApp(app).request(path, method=method, headers=headers, expect_errors=True, **kw)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def app(store: Store, events: list[Event]) -> FixGuard:
    return guard(tiny_app, store=store, on_event=events.append, login=("POST /login",))


def test_a_write_gets_a_new_id_and_the_old_one_keeps_its_jar(app: FixGuard, store: Store) -> None:
    first = fg_cookie(ask(app, "/set?v=anon", None))
    assert first
    moved = ask(app, "/set?v=changed", first)
    second = fg_cookie(moved)
    assert second and second != first
    assert ask(app, "/whoami", second).text == "changed"
    # the old ID is a snapshot: it answers with the jar it had, as an old cookie value would
    old = ask(app, "/whoami", first)
    assert old.text == "anon" and fg_cookie(old) is None
    assert decode(store.get(app.ids.verify(first).key) or "").state == SNAPSHOT  # type: ignore[union-attr]


def test_a_read_or_a_resend_of_the_same_value_is_no_write(store: Store) -> None:
    def resend(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        # the same value every time, with a fresh expiry and a Path defaulted from the request path
        expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
        start_response("200 OK", [("Set-Cookie", f"session=same; Expires={expires}")])
        return [b"ok"]

    guarded = guard(resend, store=store)
    first = fg_cookie(ask(guarded, "/a/b", None))
    assert first
    for path in ("/a/b", "/", "/other/place"):
        assert fg_cookie(ask(guarded, path, first)) is None


def test_the_snapshot_window_ends_and_the_old_id_reads_as_unknown(store: Store, events: list[Event]) -> None:
    guarded = guard(tiny_app, store=store, on_event=events.append, renew_grace=0.3)
    first = fg_cookie(ask(guarded, "/set?v=a", None))
    second = fg_cookie(ask(guarded, "/set?v=b", first))
    assert ask(guarded, "/whoami", first).text == "a"
    time.sleep(0.45)
    late = ask(guarded, "/whoami", first)
    assert late.status_int == 200 and late.text == "anonymous"  # unknown: anonymous, never 401
    assert "fixguard=;" in late.headers["Set-Cookie"]
    assert ask(guarded, "/whoami", second).text == "b"


def test_parallel_requests_during_a_write_keep_working(app: FixGuard) -> None:
    first = fg_cookie(ask(app, "/set?v=a", None))
    # a write and, in flight with it, requests that still carry the ID it replaces
    second = fg_cookie(ask(app, "/set?v=b", first))
    assert [ask(app, "/whoami", first).text for _ in range(3)] == ["a", "a", "a"]
    # two writes from one ID branch: each gets its own ID, as two cookie values would
    third = fg_cookie(ask(app, "/set?v=c", first))
    assert third not in (None, first, second)
    assert ask(app, "/whoami", second).text == "b"
    assert ask(app, "/whoami", third).text == "c"


@pytest.mark.parametrize("end", ["logout", "login"])
def test_an_ancestor_is_dead_once_its_chain_ended(app: FixGuard, events: list[Event], end: str) -> None:
    ancestors = [fg_cookie(ask(app, "/set?v=a", None))]
    for value in ("b", "c"):
        ancestors.append(fg_cookie(ask(app, f"/set?v={value}", ancestors[-1])))
    head = ancestors.pop()
    ended = ask(app, f"/{end}", head, method="POST")
    assert ended.status_int == 200
    for old in [*ancestors, head]:
        res = ask(app, "/whoami", old)
        assert res.status_int == 401 and "Set-Cookie" not in res.headers  # refused, cookie left alone
    assert kinds(events).count("fixation_blocked") == 3


def test_revoke_ends_every_id_of_every_chain(store: Store, events: list[Event]) -> None:
    app = VulnerableApp()
    guarded = guard(app, store=store, on_event=events.append)
    laptop = fg_cookie(ask(guarded, "/header-login", None))
    phone = fg_cookie(ask(guarded, "/header-login", None))
    assert laptop and phone
    # a write on the phone's session moves it to a new ID; both stay alice's

    def write(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", "extra=1; Path=/")])
        return [b"ok"]

    writer = guard(write, store=store, app_cookies=("session", "extra"))
    phone_new = fg_cookie(ask(writer, "/", phone))
    assert phone_new and phone_new != phone
    listed = store.sessions("alice")
    assert len(listed) == 2  # each chain once: its newest ID
    assert store.revoke("alice") == 2
    for cookie in (laptop, phone, phone_new):
        assert ask(guarded, "/profile", cookie).status_int == 401
    assert store.sessions("alice") == []


def test_a_write_never_extends_the_absolute_lifetime(store: Store) -> None:
    guarded = guard(tiny_app, store=store, idle_timeout=2.0, absolute_timeout=2.0)
    began = time.monotonic()
    cookie = fg_cookie(ask(guarded, "/set?v=0", None))
    for i in range(1, 4):
        time.sleep(0.45)
        moved = fg_cookie(ask(guarded, f"/set?v={i}", cookie))
        assert moved and moved != cookie  # each write: a new ID
        cookie = moved
    assert ask(guarded, "/whoami", cookie).text == "3"
    time.sleep(max(0.0, began + 2.1 - time.monotonic()))  # past the absolute end, soon after a write
    assert ask(guarded, "/whoami", cookie).text == "anonymous"


def test_authentication_and_subject_carry_along_the_chain(store: Store) -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["fixguard.session"])
        headers = [("Set-Cookie", f"session={environ['PATH_INFO']}; Path=/")]
        if environ["PATH_INFO"] == "/in":
            headers += [("Fixguard-Event", "login"), ("Fixguard-Subject", "alice")]
        start_response("200 OK", headers)
        return [b"ok"]

    guarded = guard(app, store=store)
    cookie = fg_cookie(ask(guarded, "/in", None))
    at = seen[-1]
    moved = fg_cookie(ask(guarded, "/write", cookie))
    ask(guarded, "/read", moved)
    info = seen[-1]
    assert info.authenticated and info.subject == "alice" and info.id_hash != seen[-2].id_hash
    assert info.created == seen[-2].created
    assert at.state == "none"


def test_tokens_survive_cookie_writes_in_their_session(store: Store) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/login":
            start_response("200 OK", [("Content-Type", "application/json"), ("Set-Cookie", "session=u")])
            return [b'{"access_token": "app-token-1"}']
        if path == "/write":
            start_response("200 OK", [("Set-Cookie", f"session=w{time.monotonic_ns()}; Path=/")])
            return [b"written"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_AUTHORIZATION", "none").encode()]

    guarded = guard(app, store=store, token_fields=("access_token",), renew_grace=0.2)
    login = TestApp(guarded).post("/login")
    token = login.json["access_token"]
    assert token != "app-token-1"
    bearer = {"Authorization": f"Bearer {token}"}
    cookie = fg_cookie(login)
    for _ in range(3):  # writes through the cookie, and through the token
        cookie = fg_cookie(ask(guarded, "/write", cookie)) or cookie
        TestApp(guarded).get("/write", headers=bearer)
    time.sleep(0.3)  # every snapshot along the way has ended
    assert TestApp(guarded).get("/whoami", headers=bearer).text == "Bearer app-token-1"
    TestApp(guarded).post("/logout", headers=bearer)
    assert TestApp(guarded).get("/whoami", headers=bearer, expect_errors=True).status_int == 401


def test_a_failed_login_never_leaves_the_apps_writes_under_the_presented_id(
    store: Store, events: list[Event]
) -> None:
    """A login that logged the user in, then answered 400: the writes land under a new ID."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from werkzeug.http import parse_cookie

        if environ["PATH_INFO"] == "/login":
            start_response("400 Bad Request", [("Set-Cookie", "session=alice; Path=/")])
            return [b"unsafe next"]
        sets = [("Set-Cookie", "session=anon; Path=/")] if "set" in environ["PATH_INFO"] else []
        start_response("200 OK", sets)
        return [parse_cookie(environ.get("HTTP_COOKIE", "")).get("session", "anonymous").encode()]

    guarded = guard(app, store=store, on_event=events.append, login=("POST /login 302",))
    planted = fg_cookie(ask(guarded, "/set", None))
    failed = ask(guarded, "/login", planted, method="POST")
    assert failed.status_int == 400 and "rotation" not in kinds(events)
    victim = fg_cookie(failed)
    assert victim and victim != planted
    assert ask(guarded, "/whoami", victim).text == "alice"
    assert ask(guarded, "/whoami", planted).text == "anon"  # the attacker's copy: the jar from before


def test_an_anonymous_logout_leaves_nothing_beyond_the_window(redis_server: Any, redis_prefix: str) -> None:
    from fixguard import RedisStore

    store = RedisStore.from_url(redis_server.url, prefix=redis_prefix)
    guarded = guard(tiny_app, store=store, renew_grace=5)
    client = redis_server.client()
    try:
        for _ in range(300):
            cookie = fg_cookie(ask(guarded, "/set?v=x", None))
            ask(guarded, "/logout", cookie, method="POST")
            ask(guarded, "/logout", None, method="POST")  # no session at all: nothing stored
        keys = client.keys(redis_prefix + "*")
        assert len(keys) == 300  # one short tombstone per logged-out anonymous session
        assert all(0 < client.pttl(k) <= 5000 for k in keys)
        # an authenticated session's logout still refuses the ID for its whole lifetime
        cookie = fg_cookie(ask(guarded, "/login", None, method="POST"))
        ask(guarded, "/logout", cookie, method="POST")
        key = redis_prefix + guarded.ids.verify(cookie or "").key  # type: ignore[union-attr]
        assert client.pttl(key) > 5000 and decode(client.get(key)).state == RETIRED
    finally:
        client.close()
        store.close()
