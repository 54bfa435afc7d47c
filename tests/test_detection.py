"""Zero-rule protection: a login recognised by the credentials it carries.

Every seed shape, protected with ``login=()``, is attacked for real (plant,
victim logs in, replay), on MemoryStore and on the suite's redis-server: the
vulnerable apps keep their own session ID at login, so only detection stands
between the attacker and the victim. Then what counts as credentials, what
does not, and what a rotation says about how it was recognised.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import threading
import time
from typing import Any

import pytest
from flask import Flask, jsonify, request
from webtest import TestApp
from werkzeug.http import parse_cookie

from fixguard import Event, FixGuard
from fixguard.stores.base import Store

from .apps import SECRET, fg_cookie, guard, plant
from .frameworks import ALICE_PASSWORD


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def rotations(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "rotation"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- the seed shapes, zero rules -------------------------------------------------------------------


def json_api() -> Flask:
    """A JSON login that keeps the pre-login server-side session (the third shape, with a cookie)."""
    app = Flask(__name__)
    sessions: dict[str, dict[str, str]] = {}
    ids = itertools.count(1)

    def current() -> tuple[str, dict[str, str], bool]:
        sid = request.cookies.get("sid")
        if sid in sessions:
            return sid, sessions[sid], False
        sid = f"j{next(ids)}"
        sessions[sid] = {}
        return sid, sessions[sid], True

    @app.get("/")
    def index() -> Any:
        sid, _, fresh = current()
        response = jsonify(hello="visitor")
        if fresh:
            response.set_cookie("sid", sid)
        return response

    @app.post("/api/session")
    def login() -> Any:
        sid, data, fresh = current()
        body = request.get_json(force=True)
        user = body.get("user", {})
        if not hmac.compare_digest(str(user.get("password", "")), "secret"):
            return jsonify(error="bad credentials"), 401
        data["user"] = str(user.get("name"))  # THE BUG: same sid as before login
        response = jsonify(ok=True)
        if fresh:
            response.set_cookie("sid", sid)
        return response

    @app.get("/profile")
    def profile() -> Any:
        user = sessions.get(request.cookies.get("sid", ""), {}).get("user")
        return (f"Profile of {user}", 200) if user else ("Not logged in", 401)

    return app


def signed_cookie() -> tuple[Any, tuple[str, ...]]:
    from examples import signed_cookie_app as example

    example.reset() if hasattr(example, "reset") else example.SESSIONS.clear()
    return example.create_app(), ("sid",)


def basic_auth() -> tuple[Any, tuple[str, ...]]:
    from examples import basic_auth_app as example

    example.reset()
    app = example.create_app()
    return app, (app.config["SESSION_COOKIE_NAME"],)


def django_handmade() -> tuple[Any, tuple[str, ...]]:
    from .frameworks import django_app

    return django_app.create_app(), ("sessionid",)


SHAPES: dict[str, Any] = {
    "signed-cookie-form": (
        signed_cookie,
        "/",
        lambda c: c.post("/login", {"username": "alice", "password": "secret"}),
    ),
    "basic-auth": (basic_auth, "/", lambda c: c.post("/login", headers=basic("alice", "secret"))),
    "json-login": (
        lambda: (json_api(), ("sid",)),
        "/",
        lambda c: c.post_json("/api/session", {"user": {"name": "alice", "password": "secret"}}),
    ),
    "django-handmade": (
        django_handmade,
        "/",
        lambda c: c.post("/handmade/login", {"username": "alice", "password": ALICE_PASSWORD}),
    ),
}
PROFILE = {"django-handmade": "/handmade/profile"}


def protect(make: Any, store: Store, events: list[Event], **options: Any) -> Any:
    app, cookies = make()
    wsgi = app.wsgi_app if isinstance(app, Flask) else app
    guarded = guard(wsgi, store=store, app_cookies=cookies, login=(), on_event=events.append, **options)
    return guarded, app, wsgi


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_seed_shape_is_blocked_with_no_rule(store: Store, shape: str) -> None:
    make, first, log_in = SHAPES[shape]
    profile = PROFILE.get(shape, "/profile")
    events: list[Event] = []
    guarded, _, wsgi = protect(make, store, events)

    # the bare app is exploitable: the same play without fixguard
    bare = TestApp(wsgi)
    bare.get(first)
    victim = TestApp(wsgi)
    for name, value in bare.cookies.items():
        plant(victim, name, value)
    assert log_in(victim).status_int < 400
    assert "alice" in bare.get(profile, expect_errors=True).text

    attacker = TestApp(guarded)
    attacker.get(first)
    planted = attacker.cookies["fixguard"]
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted)
    assert log_in(victim).status_int < 400
    assert "alice" in victim.get(profile).text
    assert [e.detail["via"] for e in rotations(events)] == ["credentials"]
    replay = attacker.get(profile, expect_errors=True)
    assert replay.status_int == 401 and "alice" not in replay.text


def test_a_replay_racing_a_detected_login_gets_nothing(store: Store) -> None:
    """The freeze works for detected logins: a replay while the login runs is anonymous."""
    events: list[Event] = []
    sessions: dict[str, str] = {}
    seen: list[str] = []
    inside = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sid = parse_cookie(environ.get("HTTP_COOKIE", "")).get("sid")
        headers = []
        if sid is None:
            sid = f"s{len(sessions) + 1}"
            sessions[sid] = "anonymous"
            headers.append(("Set-Cookie", f"sid={sid}; Path=/"))
        if environ["PATH_INFO"] == "/login":
            environ["wsgi.input"].read()
            sessions[sid] = "alice"  # written into the session while the login still runs
            inside.set()
            time.sleep(0.3)
        seen.append(sessions.get(sid, "anonymous"))
        start_response("200 OK", headers)
        return [sessions.get(sid, "anonymous").encode()]

    guarded = guard(app, store=store, app_cookies=("sid",), login=(), on_event=events.append)
    planted = fg_cookie(TestApp(guarded).get("/"))
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted or "")
    login = threading.Thread(target=lambda: victim.post("/login", {"password": "secret"}))
    login.start()
    assert inside.wait(5)
    during = TestApp(guarded).get("/profile", headers={"Cookie": f"fixguard={planted}"})
    login.join()
    assert during.text == "anonymous"  # frozen: the app saw no session at all
    after = TestApp(guarded).get("/profile", headers={"Cookie": f"fixguard={planted}"}, expect_errors=True)
    assert after.status_int == 401
    assert "frozen_request" in kinds(events) and rotations(events)[0].detail["via"] == "credentials"


# -- what counts -----------------------------------------------------------------------------------


def recorder(status: str = "200 OK", location: str | None = None) -> Any:
    """Answers ``status``; sets the app's cookie so a session exists; records what it read."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        app.bodies.append(environ["wsgi.input"].read())  # type: ignore[attr-defined]
        headers = [("Content-Type", "text/plain"), ("Set-Cookie", "session=v; Path=/")]
        if location:
            headers.append(("Location", location))
        start_response(status, headers)
        return [b"ok"]

    app.bodies = []  # type: ignore[attr-defined]
    return app


def detected(app: Any, method: str, path: str, **kw: Any) -> list[Event]:
    events: list[Event] = []
    options = {"login": (), **kw.pop("options", {})}
    guarded = guard(app, on_event=events.append, **options)
    client = TestApp(guarded)
    client.get("/", expect_errors=True)
    events.clear()
    client.request(path, method=method, expect_errors=True, **kw)
    return rotations(events)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"username=alice&password=x"),
        ("application/x-www-form-urlencoded", b"old_password=a&new_password1=b&new_password2=b"),  # change
        ("application/x-www-form-urlencoded", b"email=a%40b.c&pwd=x&pwd2=x"),  # registration
        ("application/x-www-form-urlencoded; charset=utf-8", b"user=a&PassWord=x"),
        ("application/json", b'{"user": {"name": "alice", "password": "x"}}'),  # nested
        ("application/json", b'[{"credentials": [{"passphrase": "x"}]}]'),
        ("application/vnd.api+json", b'{"data": {"attributes": {"passwd": "x"}}}'),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_body_with_a_password_like_field_rotates(content_type: str, body: bytes, method: str) -> None:
    found = detected(recorder(), method, "/anything", body=body, headers={"Content-Type": content_type})
    assert [e.detail["via"] for e in found] == ["credentials"]


def test_a_multipart_login_with_a_file_rotates_and_reaches_the_app_whole() -> None:
    app = recorder()
    fields = [("username", "alice"), ("password", "x")]
    guarded = guard(app, login=())
    client = TestApp(guarded)
    client.get("/")
    picture = b"\x89PNG" + bytes(range(256)) * 8
    res = client.post("/signup", fields, upload_files=[("avatar", "me.png", picture)])
    assert res.status_int == 200 and fg_cookie(res)
    assert picture in app.bodies[-1]


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [
        ("GET", "application/x-www-form-urlencoded", b"password=x"),
        ("DELETE", "application/x-www-form-urlencoded", b"password=x"),
        ("POST", "text/plain", b"password=x"),
        ("POST", "application/x-www-form-urlencoded", b"q=password&passw=1"),  # values never count
        ("POST", "application/json", b'{"note": "my password is x"}'),
        ("POST", "application/json", b"not json {password"),
        ("POST", "application/octet-stream", b'{"password": "x"}'),
    ],
)
def test_other_requests_are_not_logins(method: str, content_type: str, body: bytes) -> None:
    assert detected(recorder(), method, "/x", body=body, headers={"Content-Type": content_type}) == []


def test_a_body_over_the_limit_passes_uninspected_and_whole() -> None:
    app = recorder()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    limit = {"max_detect_body": 100}
    body = b"password=x&pad=" + b"a" * 200
    assert detected(app, "POST", "/x", body=body, headers=form, options=limit) == []
    assert app.bodies[-1] == body
    at_limit = b"password=x&pad=" + b"a" * (100 - 15)
    assert len(at_limit) == 100
    assert detected(app, "POST", "/x", body=at_limit, headers=form, options=limit)
    assert app.bodies[-1] == at_limit


def test_credential_fields_replace_the_defaults() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    opts = {"credential_fields": ("pin",)}
    assert detected(recorder(), "POST", "/x", body=b"pin=1234", headers=form, options=opts)
    over_match = b"shipping_address=x"  # "name contains": short fragments over-match
    assert detected(recorder(), "POST", "/x", body=over_match, headers=form, options=opts)
    assert not detected(recorder(), "POST", "/x", body=b"password=x", headers=form, options=opts)


def test_detect_logins_false_restores_rules_only() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    opts = {"detect_logins": False}
    assert not detected(recorder(), "POST", "/login", body=b"password=x", headers=form, options=opts)
    assert not detected(recorder(), "GET", "/", headers=basic("alice", "pw"), options=opts)


def test_a_failed_login_redirecting_back_to_its_form_does_not_rotate() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"username=a&password=wrong"
    for location in ("/signin", "/signin?error=1", "http://localhost/signin/", "signin"):
        assert not detected(recorder("302 Found", location), "POST", "/signin", body=body, headers=form)
    assert detected(recorder("302 Found", "/home"), "POST", "/signin", body=body, headers=form)
    assert not detected(recorder("401 Unauthorized"), "POST", "/signin", body=body, headers=form)
    assert not detected(recorder("200 OK"), "POST", "/signin", body=body, headers=form,
                        options={"login": ("POST /signin 302",)})  # fmt: skip # the rule decides


# -- Basic and Digest ------------------------------------------------------------------------------


def test_the_same_basic_user_rotates_once_then_never() -> None:
    events: list[Event] = []
    client = TestApp(guard(recorder(), login=(), on_event=events.append))
    first = client.get("/", headers=basic("alice", "pw"))
    cookie = fg_cookie(first)
    assert cookie and len(rotations(events)) == 1
    for _ in range(5):
        res = client.get("/page", headers=basic("alice", "pw"))
        assert fg_cookie(res) is None
    assert len(rotations(events)) == 1
    # another user on the same session is a new login, and so is Basic after a form login
    client.get("/", headers=basic("bob", "pw"))
    assert len(rotations(events)) == 2
    client.post("/form", {"password": "x"})
    client.get("/", headers=basic("bob", "pw"))
    assert len(rotations(events)) == 4


def test_digest_credentials_count_and_a_bad_password_does_not_rotate() -> None:
    digest = {"Authorization": 'Digest username="alice", realm="r", nonce="n", uri="/", response="x"'}
    assert detected(recorder(), "GET", "/", headers=digest)
    assert not detected(recorder("401 Unauthorized"), "GET", "/", headers=basic("alice", "wrong"))


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic \xff\xfe",
        "Digest realm=x",
    ],
)
def test_garbled_authorization_is_not_a_login_and_never_an_error(header: str) -> None:
    events: list[Event] = []
    client = TestApp(guard(recorder(), login=(), on_event=events.append))
    res = client.get("/", headers={"Authorization": header}, expect_errors=True)
    assert res.status_int == 200 and rotations(events) == []


def test_only_a_keyed_hash_of_the_user_is_stored() -> None:
    from fixguard import MemoryStore

    store = MemoryStore()
    client = TestApp(guard(recorder(), store=store, login=()))
    client.get("/", headers=basic("alice-the-user", "the-password"))
    dump = json.dumps(store._data, default=str)
    assert "alice-the-user" not in dump and "the-password" not in dump


# -- fixguard tokens -------------------------------------------------------------------------------


def test_an_api_client_changing_its_password_under_its_token_keeps_a_working_token() -> None:
    def api(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        environ["wsgi.input"].read()
        if path == "/login":
            start_response("200 OK", [("Content-Type", "application/json"), ("Set-Cookie", "session=s")])
            return [b'{"token": "app-token"}']
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_AUTHORIZATION", "none").encode()]

    events: list[Event] = []
    guarded = FixGuard(api, secret_key=SECRET, secure=False, login=(), token_fields=("token",),
                       on_event=events.append)  # fmt: skip
    login = TestApp(guarded).post_json("/login", {"username": "a", "password": "x"})
    token = login.json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    change = TestApp(guarded).post_json("/account/password", {"old_password": "x", "new_password": "y"},
                                        headers=bearer)  # fmt: skip
    assert change.status_int == 200 and change.text == "Bearer app-token"
    assert len(rotations(events)) == 1  # the login only
    assert TestApp(guarded).get("/me", headers=bearer).text == "Bearer app-token"


def test_a_planted_fixguard_token_never_logs_its_planter_in_with_detection_alone() -> None:
    """The attacker logs in as himself, plants his fixguard token; the victim logs in under it.

    The login carries credentials under a fixguard token: frozen, and since its
    answer hands out a token, a login (not a password change): the planted
    token's session is retired and the victim gets a token of her own.
    """
    from examples import bearer_app

    bearer_app.reset()
    events: list[Event] = []
    app = bearer_app.create_app()
    guarded = FixGuard(
        app.wsgi_app,
        secret_key=SECRET,
        secure=False,
        login=(),
        token_fields=("access_token",),
        app_cookies=(app.config["SESSION_COOKIE_NAME"],),
        on_event=events.append,
    )
    bob, alice = {"username": "bob", "password": "hunter2"}, {"username": "alice", "password": "secret"}
    mine = TestApp(guarded).post_json("/login", bob).json["access_token"]
    planted = {"Authorization": f"Bearer {mine}"}
    assert TestApp(guarded).get("/me", headers=planted).json["user"] == "bob"
    victim = TestApp(guarded).post_json("/login", alice, headers=planted)
    hers = victim.json["access_token"]
    assert hers != mine and hers.startswith("fgt_")
    assert TestApp(guarded).get("/me", headers={"Authorization": f"Bearer {hers}"}).json["user"] == "alice"
    replay = TestApp(guarded).get("/me", headers=planted, expect_errors=True)
    assert replay.status_int == 401 and "alice" not in replay.text
    assert [e.detail["via"] for e in rotations(events)] == ["credentials", "credentials"]
