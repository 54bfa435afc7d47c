"""The bearer token vault, through WSGI: swap at login, translate on the way in, burn, revoke."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from webtest import TestApp

from fixguard import Event, MemoryStore

from .apps import fg_cookie, guard


class TokenApp:
    """An API with the seeds' bearer flaw: login echoes the presented token, else mints one."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}  # app token -> user
        self.seen: list[str | None] = []

    def __call__(self, environ: dict[str, Any], sr: Any) -> Any:
        path = environ["PATH_INFO"]
        auth = environ.get("HTTP_AUTHORIZATION")
        self.seen.append(auth)
        presented = auth[7:] if auth and auth.startswith("Bearer ") else None
        if path in ("/login", "/elevate", "/nested/login"):
            token = presented or secrets.token_hex(8)
            self.users[token] = "alice"
            doc: dict[str, Any] = {"access_token": token, "refresh_token": "r-" + token, "user": "alice"}
            if path == "/nested/login":
                doc = {"data": {"token": token}}
            body = json.dumps(doc).encode()
            sr("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                          ("Set-Cookie", "session=web-" + token), ("Fixguard-Subject", "alice")])
            return [body]
        if path == "/html-login":
            sr("200 OK", [("Content-Type", "text/html")])
            return [b"<p>token abc</p>"]
        if path == "/big-login":
            sr("200 OK", [("Content-Type", "application/json")])
            return [b'{"access_token": "big", "pad": "', b"x" * 5000, b'"}']
        if path == "/stream-login":
            def gen() -> Any:
                sr("200 OK", [("Content-Type", "application/json")])
                yield b'{"access_'
                yield b'token": "streamed"}'
            self.users["streamed"] = "alice"
            return gen()
        if path == "/logout":
            sr("200 OK", [("Content-Type", "text/plain")])
            return [b"bye"]
        user = self.users.get(presented or "")
        if user is None:
            sr("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"anonymous"]
        sr("200 OK", [("Content-Type", "text/plain")])
        return [f"user={user} token={presented}".encode()]


@pytest.fixture
def api() -> TokenApp:
    return TokenApp()


@pytest.fixture
def events() -> list[Event]:
    return []


def wrap(api: TokenApp, events: list[Event], **kw: Any) -> Any:
    kw.setdefault("token_fields", ("access_token", "refresh_token"))
    kw.setdefault("login", ("POST /login", "POST /nested/login", "POST /html-login", "POST /big-login",
                            "POST /stream-login"))
    kw.setdefault("elevate", ("POST /elevate",))
    return guard(api, on_event=events.append, max_token_body=1000, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_tokens_are_swapped_and_translated_back(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    res = TestApp(g).post("/login")
    doc = res.json
    assert doc["access_token"].startswith("fgt_") and doc["refresh_token"].startswith("fgt_")
    assert doc["access_token"] != doc["refresh_token"] and doc["user"] == "alice"
    assert res.headers["Content-Length"] == str(len(res.body))
    app_token = next(iter(api.users))
    assert app_token not in res.text
    me = TestApp(g).get("/me", headers=bearer(doc["access_token"]))
    assert me.text == f"user=alice token={app_token}"
    assert api.seen[-1] == f"Bearer {app_token}"


def test_nested_token_path(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events, token_fields=("data.token",))
    doc = TestApp(g).post("/nested/login").json
    assert doc["data"]["token"].startswith("fgt_")
    assert TestApp(g).get("/me", headers=bearer(doc["data"]["token"])).text.startswith("user=alice")


def test_foreign_tokens_never_reach_the_app_unless_passed_through(api: TokenApp, events: list[Event]) -> None:
    api.users["app-made"] = "alice"
    g = wrap(api, events, token_passthrough=("GET /public/*",))
    res = TestApp(g).get("/me", headers=bearer("app-made"), expect_errors=True)
    assert res.status_int == 401 and api.seen[-1] is None
    res = TestApp(g).get("/public/me", headers=bearer("app-made"))
    assert api.seen[-1] == "Bearer app-made"
    forged = "fgt_" + "A" * 43 + "." + "B" * 43
    TestApp(g).get("/me", headers=bearer(forged), expect_errors=True)
    assert api.seen[-1] is None and "bad_token" in [e.kind for e in events]


def test_basic_credentials_pass_untouched(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    TestApp(g).get("/me", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}, expect_errors=True)
    assert api.seen[-1] == "Basic YWxpY2U6c2VjcmV0"


def test_token_presented_at_login_is_burned(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    victim = TestApp(g).post("/login", headers=bearer("attacker-chosen"))
    assert "attacker-chosen" not in victim.text  # the echo never reaches the client
    res = TestApp(g).get("/me", headers=bearer("attacker-chosen"), expect_errors=True)
    assert res.status_int == 401 and "no longer valid" in res.text
    assert "token_blocked" in [e.kind for e in events]
    assert api.seen[-1] is None or "attacker-chosen" not in (api.seen[-1] or "")


def test_pre_login_and_pre_elevate_tokens_are_refused(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    first = TestApp(g).post("/login").json["access_token"]
    second = TestApp(g).post("/elevate", headers=bearer(first)).json["access_token"]
    assert second != first
    res = TestApp(g).get("/me", headers=bearer(first), expect_errors=True)
    assert res.status_int == 401 and "fixation_blocked" in [e.kind for e in events]
    assert TestApp(g).get("/me", headers=bearer(second)).text.startswith("user=alice")


def test_one_login_rotates_both_and_one_logout_ends_both(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    web = TestApp(g)
    res = web.post("/login")
    cookie, token = fg_cookie(res), res.json["access_token"]
    assert cookie
    web.get("/me", headers=bearer(token))
    TestApp(g).post("/logout", headers=bearer(token))  # logout through the API...
    dead = TestApp(g).get("/me", headers={"Cookie": f"fixguard={cookie}"}, expect_errors=True)
    assert dead.status_int == 401  # ...ends the web session too
    # and the other way round
    res = TestApp(g).post("/login")
    cookie, token = fg_cookie(res), res.json["access_token"]
    TestApp(g).post("/logout", headers={"Cookie": f"fixguard={cookie}"})
    assert TestApp(g).get("/me", headers=bearer(token), expect_errors=True).status_int == 401


def test_revoke_subject_revokes_tokens(api: TokenApp, events: list[Event]) -> None:
    store = MemoryStore()
    g = wrap(api, events, store=store)
    token = TestApp(g).post("/login").json["access_token"]
    assert store.revoke("alice") == 1
    assert TestApp(g).get("/me", headers=bearer(token), expect_errors=True).status_int == 401


def test_cookie_carried_tokens_are_vaulted(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events, app_cookies=("session",))
    res = TestApp(g).post("/login")
    assert not any(h.startswith("session=") for h in res.headers.getall("Set-Cookie"))


@pytest.mark.parametrize(("path", "reason"), [("/html-login", "not JSON"), ("/big-login", "max_token_body")])
def test_non_json_and_oversized_bodies_pass_untouched(
    api: TokenApp, events: list[Event], path: str, reason: str
) -> None:
    g = wrap(api, events)
    res = TestApp(g).post(path)
    assert "fgt_" not in res.text
    assert path != "/big-login" or res.body == b'{"access_token": "big", "pad": "' + b"x" * 5000 + b'"}'
    skipped = [e for e in events if e.kind == "token_body_skipped"]
    assert skipped and reason in skipped[0].detail["reason"]
    assert fg_cookie(res)  # the login still rotated the session


def test_streamed_login_body(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    doc = TestApp(g).post("/stream-login").json
    assert doc["access_token"].startswith("fgt_")
    assert TestApp(g).get("/me", headers=bearer(doc["access_token"])).text == "user=alice token=streamed"


def test_token_id_is_not_a_cookie_and_cookie_id_is_not_a_token(api: TokenApp, events: list[Event]) -> None:
    g = wrap(api, events)
    res = TestApp(g).post("/login")
    cookie, token = fg_cookie(res), res.json["access_token"]
    assert TestApp(g).get("/me", headers={"Cookie": f"fixguard={token[4:]}"}, expect_errors=True).text == \
        "anonymous"
    assert TestApp(g).get("/me", headers=bearer("fgt_" + str(cookie)), expect_errors=True).text == "anonymous"


def test_without_token_fields_authorization_is_untouched(api: TokenApp, events: list[Event]) -> None:
    g = guard(api)
    TestApp(g).get("/me", headers=bearer("anything"), expect_errors=True)
    assert api.seen[-1] == "Bearer anything"
