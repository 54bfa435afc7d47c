"""A login that escapes every signal is never worse than no fixguard.

The apps here are safe bare: their own session changes at login (Flask's
cookie session, a server-side session that renews its key like Django's
``cycle_key()``). Behind fixguard with a wrong or missing rule, or with a
login that logs the user in and then fails, the attacker plays for real —
plants an ID (an anonymous one, or his own authenticated one), lets the victim
log in, replays — and must never get the victim's session.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, abort, redirect, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user
from webtest import TestApp
from werkzeug.http import parse_cookie

from fixguard import Event, FixGuard
from fixguard.stores.base import Store

from .apps import fg_cookie, guard, plant

USERS = {"alice": "alice-pw", "mallory": "mallory-pw"}


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def flask_app(strict_slashes: bool = True) -> Flask:
    """Flask-Login on Flask's cookie session, with the login views real apps write."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secrets.token_hex(16)
    app.url_map.strict_slashes = strict_slashes
    manager = LoginManager(app)

    @manager.user_loader
    def load(user_id: str) -> User | None:
        return User(user_id) if user_id in USERS else None

    def check() -> User:
        name = request.form.get("username", "")
        if not hmac.compare_digest(USERS.get(name, "\0"), request.form.get("password", "")):
            abort(401)
        return User(name)

    @app.get("/")
    def index() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return "home"

    @app.route("/login", methods=["GET", "HEAD", "POST"])
    def login() -> Any:
        if request.method != "POST":
            login_user(User(request.args["as"])) if "as" in request.args else None  # an SSO-ish GET login
            return "form"
        login_user(check())
        target = request.args.get("next")
        if target is not None and not target.startswith("/"):
            abort(400)  # Flask-Login's documented view: the user is already logged in
        return redirect(target or "/")  # a newline in ``next`` makes werkzeug fail here: 500

    @app.post("/connexion-é")
    def connexion() -> str:
        login_user(check())
        return "bienvenue"

    @app.get("/profile")
    def profile() -> tuple[str, int]:
        if not current_user.is_authenticated:
            return "anonymous", 401
        return f"profile of {current_user.id}", 200

    return app


class CycleKeyApp:
    """Server-side sessions keyed by ``sid``, renewed at login: Django's ``cycle_key()`` shape."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, str]] = {}
        self.ids = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sid = parse_cookie(environ.get("HTTP_COOKIE", "")).get("sid")
        headers = [("Content-Type", "text/plain")]
        if sid not in self.sessions:
            sid = f"k{next(self.ids)}"
            self.sessions[sid] = {}
            headers.append(("Set-Cookie", f"sid={sid}; Path=/"))
        path = environ["PATH_INFO"]
        if path == "/login" and environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size).decode()
            form = dict(p.split("=", 1) for p in body.split("&") if "=" in p)
            if USERS.get(form.get("username", "")) != form.get("password"):
                start_response("200 OK", headers)  # a failed login answers 200, as Django's does
                return [b"try again"]
            data = self.sessions.pop(sid)  # cycle_key: same data, new key
            sid = f"k{next(self.ids)}"
            self.sessions[sid] = {**data, "user": form["username"]}
            headers.append(("Set-Cookie", f"sid={sid}; Path=/"))
            start_response("302 Found", [*headers, ("Location", "/")])
            return [b""]
        if path == "/profile":
            user = self.sessions[sid].get("user")
            start_response("200 OK" if user else "401 Unauthorized", headers)
            return [f"profile of {user}".encode() if user else b"anonymous"]
        start_response("200 OK", headers)
        return [b"home"]


# -- the attack ------------------------------------------------------------------------------------


def attacker_id(app: Any, own_login: bool) -> str:
    """The ID the attacker plants: a fresh anonymous one, or one he logged in with himself."""
    client = TestApp(app)
    client.get("/")
    if own_login:
        client.post("/login", {"username": "mallory", "password": "mallory-pw"}, expect_errors=True)
        assert "mallory" in client.get("/profile", expect_errors=True).text
    value = client.cookies.get("fixguard")
    assert value
    return value


def victim_logs_in(app: Any, planted: str, path: str = "/login") -> TestApp:
    victim = TestApp(app)
    plant(victim, "fixguard", planted)
    victim.post(path, {"username": "alice", "password": "alice-pw"}, expect_errors=True)
    return victim


def replay(app: Any, planted: str) -> str:
    res = TestApp(app).get("/profile", headers={"Cookie": f"fixguard={planted}"}, expect_errors=True)
    return str(res.text)


APPS = {"flask-cookie-session": flask_app, "cycle-key": CycleKeyApp}
WRONG_RULES = {
    "no rule": (),
    "default rule, other path": ("POST /signin",),
    "status that never comes": ("POST /login 201",),
}


@pytest.mark.parametrize("own_login", [False, True], ids=["anonymous-plant", "own-authenticated-plant"])
@pytest.mark.parametrize("rules", list(WRONG_RULES.values()), ids=list(WRONG_RULES))
@pytest.mark.parametrize("kind", list(APPS))
def test_a_safe_app_stays_safe_with_wrong_or_missing_rules(
    kind: str, rules: tuple[str, ...], own_login: bool, store: Store
) -> None:
    bare = APPS[kind]()
    cookie_name = "sid" if kind == "cycle-key" else "session"
    events: list[Event] = []
    guarded = guard(
        bare,
        store=store,
        app_cookies=(cookie_name,),
        login=rules,
        detect_logins=False,  # credential detection would catch these logins: switch it off
        on_event=events.append,
    )
    planted = attacker_id(guarded, own_login)
    victim = victim_logs_in(guarded, planted)
    assert victim.get("/profile").text == "profile of alice"  # the login worked
    assert "rotation" not in [e.kind for e in events]  # no signal: this login escaped them all
    seen = replay(guarded, planted)
    assert "alice" not in seen
    # Flask's cookie keeps mallory's login; cycle_key moved mallory's data away with the key
    mallory = own_login and kind == "flask-cookie-session"
    assert seen == ("profile of mallory" if mallory else "anonymous")


def test_the_bare_app_is_safe_too() -> None:
    """The baseline these tests hold fixguard to: the attack fails against the bare app."""
    for make in APPS.values():
        app = make()
        attacker = TestApp(app)
        attacker.get("/")
        victim = TestApp(app)
        for name, value in attacker.cookies.items():
            plant(victim, name, value)
        victim.post("/login", {"username": "alice", "password": "alice-pw"}, expect_errors=True)
        assert victim.get("/profile").text == "profile of alice"
        assert "alice" not in attacker.get("/profile", expect_errors=True).text


@pytest.mark.parametrize(
    ("query", "status"),
    [("?next=https://evil.example/", 400), ("?next=" + quote("/\n"), 500)],
    ids=["login_user-then-abort-400", "login_user-then-redirect-500"],
)
def test_a_login_that_fails_after_logging_in_is_not_exploitable(
    store: Store, query: str, status: int
) -> None:
    events: list[Event] = []
    guarded = guard(flask_app(), store=store, login=("POST /login",), on_event=events.append)
    planted = attacker_id(guarded, own_login=False)
    victim = TestApp(guarded)
    plant(victim, "fixguard", planted)
    res = victim.post("/login" + query, {"username": "alice", "password": "alice-pw"}, expect_errors=True)
    assert res.status_int == status
    assert "rotation" not in [e.kind for e in events]  # the rule did not count the failed answer
    assert victim.get("/profile").text == "profile of alice"  # the app did log her in
    assert replay(guarded, planted) == "anonymous"


# -- rules match the paths the router serves ------------------------------------------------------


def rotated(app: FixGuard, events: list[Event], method: str, path: str, **form: str) -> bool:
    client = TestApp(app)
    client.get("/")
    before = client.cookies["fixguard"]
    events.clear()
    res = client.request(path, method=method, POST=form or None, expect_errors=True)
    assert res.status_int < 500, res.text
    return "rotation" in [e.kind for e in events] and fg_cookie(res) not in (None, before)


@pytest.mark.parametrize("path", ["/login", "//login", "/login/"])
def test_a_login_rule_matches_every_path_the_router_runs(path: str) -> None:
    events: list[Event] = []
    app = guard(flask_app(strict_slashes=False), login=("POST /login",), on_event=events.append)
    form = {"username": "alice", "password": "alice-pw"}
    client = TestApp(app)
    client.get("/")
    res = client.post(path, form, expect_errors=True)
    assert res.status_int == 302 and res.headers["Location"] == "/"  # the router ran the login view
    assert rotated(app, events, "POST", path, **form)


def test_a_non_ascii_route_rotates() -> None:
    events: list[Event] = []
    app = guard(flask_app(), login=("POST /connexion-é",), on_event=events.append)
    form = {"username": "alice", "password": "alice-pw"}
    assert rotated(app, events, "POST", quote("/connexion-é"), **form)


def test_head_on_a_get_rule_rotates() -> None:
    events: list[Event] = []
    app = guard(flask_app(), login=("GET /login",), on_event=events.append)
    assert rotated(app, events, "HEAD", "/login?as=alice")
