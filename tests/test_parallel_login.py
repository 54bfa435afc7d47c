"""A login never logs its own user out: parallel requests that still carry the pre-login ID.

A page load sends the login and other requests together, all with the
pre-login ID. Two of them here reach the server while the login runs (the ID
is frozen: they run anonymous and inert), three after it (the ID is a
tombstone: refused). The six responses can reach the browser in any order;
each order is applied to a cookie jar that keeps the last ``Set-Cookie``, as
browsers do. Whatever the order, the browser ends logged in with the new ID.
"""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import pytest
from webtest import TestApp
from werkzeug.http import parse_cookie

from fixguard import Event
from fixguard.stores.base import Store

from .apps import VulnerableApp, fg_cookie, guard


def ask(app: Any, method: str, path: str, cookie: str | None, form: str = "", basic: bool = False) -> Any:
    headers = {"Cookie": f"fixguard={cookie}"} if cookie else {}
    if basic:
        headers.update(BASIC)
    if form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    client = TestApp(app)
    return client.request(path, method=method, headers=headers, body=form.encode(), expect_errors=True)


class ParallelPage(VulnerableApp):
    """The vulnerable app, whose login handler lets two parallel requests in while it runs.

    It also takes Basic credentials on any request, as Basic apps do (a
    browser sends them with every request of a page once the user typed them):
    with them, whatever session the request carried is alice's.
    """

    during: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/login" and self.during is not None:
            during, self.during = self.during, None
            during()  # the record is frozen now: these run as anonymous and inert
        if environ.get("HTTP_AUTHORIZATION") == BASIC["Authorization"]:
            sid = parse_cookie(environ.get("HTTP_COOKIE", "")).get("session")
            if sid is None or sid not in self.sessions:
                sid = f"s{next(self.counter)}"
                self.sessions[sid] = {}
                environ["HTTP_COOKIE"] = f"session={sid}"
                self.fresh = sid
            self.sessions[sid]["user"] = "alice"  # the same bug: the session it came with
            if environ["PATH_INFO"] == "/login":
                environ["PATH_INFO"] = "/"
        return super().__call__(environ, self.setting(start_response))

    def setting(self, start_response: Any) -> Any:
        fresh, self.fresh = self.fresh, None

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if fresh is not None:
                headers = [*headers, ("Set-Cookie", f"session={fresh}; Path=/")]
            return start_response(status, headers, exc_info)

        return start

    fresh: str | None = None


BASIC = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}


def fixguard_headers(response: Any) -> list[str]:
    return [h for h in response.headers.getall("Set-Cookie") if h.startswith("fixguard=")]


def apply(jar: str | None, headers: list[str]) -> str | None:
    """What a browser's cookie is after these Set-Cookie headers: the last one wins, Max-Age=0 deletes."""
    for header in headers:
        value = header.split(";", 1)[0].split("=", 1)[1]
        jar = None if "Max-Age=0" in header or not value else value
    return jar


@pytest.mark.parametrize("signal", ["rule", "form-detection", "basic-detection"])
@pytest.mark.parametrize("on_fixation", ["reject", "strip"])
def test_every_arrival_order_ends_logged_in(store: Store, on_fixation: str, signal: str) -> None:
    events: list[Event] = []
    app = ParallelPage()
    rules = {"login": ("POST /login",)} if signal == "rule" else {"login": ()}
    guarded = guard(app, store=store, on_fixation=on_fixation, on_event=events.append, **rules)
    planted = fg_cookie(ask(guarded, "GET", "/", None))
    assert planted
    basic = signal == "basic-detection"  # the browser sends the credentials with every request
    responses: list[Any] = []

    def images_during_the_login() -> None:
        responses.extend(ask(guarded, "GET", f"/img{i}", planted, basic=basic) for i in range(2))

    app.during = images_during_the_login
    login = ask(guarded, "POST", "/login", planted, form="" if basic else "password=secret", basic=basic)
    new = fg_cookie(login)
    assert login.status_int == 200 and new and new != planted
    assert ask(guarded, "GET", "/profile", new).text == "user=alice"
    responses += [ask(guarded, "GET", path, planted, basic=basic) for path in ("/profile", "/img3", "/img4")]
    assert len(responses) == 5

    logged_in = {new}
    if basic:
        # every parallel request carries alice's Basic credentials: one that reaches the app (during
        # the login, or after it with strip) is a login of its own and may hand out an ID of its own,
        # always a logged-in one; none ever clears the cookie
        for response in responses:
            for header in fixguard_headers(response):
                value = apply(None, [header])
                assert value and ask(guarded, "GET", "/profile", value).text == "user=alice"
                logged_in.add(value)
    else:
        late = responses[2:]
        assert all("alice" not in r.text for r in responses)
        if on_fixation == "reject":
            assert all(r.status_int == 401 and "session has ended" in r.text for r in late)
        else:  # strip: the app answered them as anonymous, and set a cookie fixguard dropped
            assert late[0].status_int == 401 and late[0].text == "anonymous"
        blocked = [e.detail.get("cookie") for e in events if e.kind == "fixation_blocked"]
        assert blocked == ["kept"] * 3
        for response in responses:
            assert fixguard_headers(response) == []  # neither cleared nor replaced

    everything = [*responses, login]
    orders = 0
    for order in itertools.permutations(everything):
        jar = planted
        for response in order:
            jar = apply(jar, fixguard_headers(response))
        assert jar in logged_in
        orders += 1
    assert orders == 720


def test_the_same_holds_for_a_logout(store: Store) -> None:
    app = VulnerableApp()
    guarded = guard(app, store=store)
    cookie = fg_cookie(ask(guarded, "POST", "/login", None, form="password=secret"))
    out = ask(guarded, "POST", "/logout", cookie)
    assert any("Max-Age=0" in h for h in fixguard_headers(out))  # the logout itself clears
    late = ask(guarded, "GET", "/profile", cookie)
    assert late.status_int == 401 and fixguard_headers(late) == []


def test_after_the_window_a_replay_gets_401_and_a_clearing_cookie(store: Store) -> None:
    app = VulnerableApp()
    guarded = guard(app, store=store, renew_grace=0.3)
    planted = fg_cookie(ask(guarded, "GET", "/", None))
    ask(guarded, "POST", "/login", planted, form="password=secret")
    assert fixguard_headers(ask(guarded, "GET", "/profile", planted)) == []
    time.sleep(0.35)
    replay = ask(guarded, "GET", "/profile", planted)
    assert replay.status_int == 401 and "session has ended" in replay.text
    assert any("Max-Age=0" in h for h in fixguard_headers(replay))


def test_a_revoked_id_is_cleared_at_once(store: Store) -> None:
    """Revocation is no race with the same browser: its refusal clears the cookie straight away."""
    app = VulnerableApp()
    guarded = guard(app, store=store)
    cookie = fg_cookie(ask(guarded, "GET", "/header-login", None))
    assert store.revoke("alice") == 1
    replay = ask(guarded, "GET", "/profile", cookie)
    assert replay.status_int == 401 and any("Max-Age=0" in h for h in fixguard_headers(replay))
