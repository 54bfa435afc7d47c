"""``fixguard.contrib.flask.FixGuard``: the Flask extension, with the attack played through it.

The app keeps server-side sessions under the cookie ``SESSION_COOKIE_NAME``
names (here ``sid``) and, like the apps fixguard exists for, writes the user
into whatever session the login request carried. Bare, the planted cookie is
the victim's session. With the extension — configured only by ``app.config``,
``app_cookies`` left to default — the planted ID is refused after the login.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import flask
import pytest
from flask import Flask, make_response, request
from webtest import TestApp

import fixguard
from fixguard import ConfigError, Event
from fixguard import FixGuard as CoreGuard
from fixguard.contrib import testing
from fixguard.contrib.flask import FixGuard

from .attack import fixation, plant

KEY = secrets.token_urlsafe(48)


def vulnerable_app(**config: Any) -> Flask:
    """Server-side sessions in a dict, keyed by the cookie SESSION_COOKIE_NAME names; no rotation."""
    app = Flask(__name__)
    app.config.update(SESSION_COOKIE_NAME="sid", **config)
    sessions: dict[str, dict[str, str]] = {}
    counter = itertools.count(1)

    def session() -> tuple[str, dict[str, str]]:
        sid = request.cookies.get(app.config["SESSION_COOKIE_NAME"], "")
        if sid not in sessions:
            sid = f"s{next(counter)}"
            sessions[sid] = {}
        return sid, sessions[sid]

    def answer(text: str, sid: str, status: int = 200) -> Any:
        response = make_response(text, status)
        response.set_cookie(app.config["SESSION_COOKIE_NAME"], sid, httponly=True)
        return response

    @app.get("/")
    def index() -> Any:
        sid, _ = session()
        return answer("hello", sid)

    @app.post("/login")
    def login() -> Any:
        sid, data = session()
        if request.form.get("password") != "secret":
            return answer("bad credentials", sid, 401)
        data["user"] = request.form.get("user", "alice")  # the bug: same sid, now authenticated
        return answer("welcome", sid)

    @app.post("/signal-login")
    def signal_login() -> Any:
        sid, data = session()
        data["user"] = "alice"
        fixguard.signal(request.environ, "login", subject="alice")
        return answer("welcome", sid)

    @app.get("/profile")
    def profile() -> Any:
        sid, data = session()
        return answer(f"user={data['user']}", sid) if "user" in data else answer("anonymous", sid, 401)

    return app


def login(client: TestApp) -> Any:
    return client.post("/login", {"user": "alice", "password": "secret"})


CONFIG = {"FIXGUARD_SECRET_KEY": KEY, "FIXGUARD_SECURE": False, "FIXGUARD_LOGIN": ["POST /login"]}


def test_the_bare_app_is_vulnerable() -> None:
    app = vulnerable_app()
    attacker = TestApp(app)
    planted = attacker.get("/").headers["Set-Cookie"].split(";")[0].split("=")[1]
    victim = TestApp(app)
    plant(victim, "sid", planted)
    login(victim)
    replay = TestApp(app)
    plant(replay, "sid", planted)
    assert replay.get("/profile").text == "user=alice"  # the attacker is alice


def test_the_extension_blocks_the_attack() -> None:
    app = vulnerable_app(**CONFIG)
    FixGuard(app)
    assert isinstance(app.wsgi_app, CoreGuard) and app.extensions["fixguard"] is app.wsgi_app
    outcome = fixation(app, login)
    assert outcome.victim_login.text == "welcome"
    assert outcome.victim_after.text == "user=alice"
    assert outcome.replay.status_int == 401  # the planted ID is dead
    for response in (outcome.victim_login, outcome.victim_after, outcome.replay):
        assert not any(h.startswith("sid=") for h in response.headers.getall("Set-Cookie"))
    assert FixGuard.guard_of(app).settings.app_cookies == ("sid",)  # SESSION_COOKIE_NAME, by default


def test_init_app_later_and_keywords_win_over_config() -> None:
    events: list[Event] = []
    extension = FixGuard(on_event=events.append, idle_timeout=600)
    first, second = vulnerable_app(**CONFIG, FIXGUARD_IDLE_TIMEOUT=60), vulnerable_app(**CONFIG)
    for app in (first, second):
        guard = extension.init_app(app)
        assert guard.settings.idle_timeout == 600
    assert fixation(second, login).replay.status_int == 401
    assert "fixation_blocked" in [e.kind for e in events]
    assert FixGuard.guard_of(first) is not FixGuard.guard_of(second)


def test_config_names_the_same_settings() -> None:
    app = vulnerable_app(
        **CONFIG,
        FIXGUARD_APP_COOKIES=("sid", "remember"),
        FIXGUARD_COOKIE_NAME="fg",
        FIXGUARD_REJECT_REDIRECT="/login",
        FIXGUARD_COOKIE_MAX_AGE=3600,
    )
    FixGuard(app)
    settings = FixGuard.guard_of(app).settings
    assert settings.app_cookies == ("sid", "remember") and settings.cookie_name == "fg"
    assert settings.reject_redirect == "/login" and settings.cookie_max_age == 3600
    # Flask's test client goes through fixguard too
    client = app.test_client()
    set_cookie = client.get("/").headers["Set-Cookie"]
    assert set_cookie.startswith("fg=") and "Max-Age=3600" in set_cookie


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**CONFIG, "FIXGUARD_SECUR": False}, "FIXGUARD_SECUR (app.config) is not a fixguard setting. "
         "Did you mean FIXGUARD_SECURE?"),
        ({**CONFIG, "FIXGUARD_secure": False}, "FIXGUARD_secure (app.config) is not a fixguard setting"),
        ({"FIXGUARD_SECURE": False}, "fixguard needs app.config['FIXGUARD_SECRET_KEY']"),
        ({**CONFIG, "FIXGUARD_SECURE": "no"}, "secure must be True or False"),
        ({**CONFIG, "FIXGUARD_COOKIE_MAX_AGE": 10**7}, "cookie_max_age (10000000s) is longer than"),
    ],
)  # fmt: skip
def test_bad_configuration_is_refused_at_init(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FixGuard(vulnerable_app(**config))
    assert message in str(caught.value)


def test_an_app_is_protected_once() -> None:
    app = vulnerable_app(**CONFIG)
    FixGuard(app)
    with pytest.raises(ConfigError, match="already protected"):
        FixGuard(app)


# -- fixguard.signal() in the app's own unit tests ---------------------------------------------


def test_signal_without_fixguard_stays_loud() -> None:
    app = vulnerable_app()
    app.testing = True
    with pytest.raises(RuntimeError, match="FixGuard did not handle"):
        app.test_client().post("/signal-login")


def test_the_testing_helper_records_signals_in_unit_tests() -> None:
    app = vulnerable_app()
    app.testing = True
    with app.test_client() as client:  # keeps the last request's context: flask.request
        client.environ_base.update(testing.environ())
        assert client.post("/signal-login").status_code == 200
        assert testing.signals(flask.request.environ) == ["login"]
        assert testing.subject(flask.request.environ) == "alice"
        client.get("/")
        assert testing.signals(flask.request.environ) == []


def test_the_testing_helper_with_webtest() -> None:
    app = vulnerable_app()
    response = TestApp(app, extra_environ=testing.environ()).post("/signal-login")
    assert testing.signals(response.request.environ) == ["login"]


def test_a_real_guard_still_rotates_on_the_signal() -> None:
    app = vulnerable_app(**CONFIG)
    FixGuard(app)
    outcome = fixation(app, lambda victim: victim.post("/signal-login"))
    assert outcome.victim_after.text == "user=alice" and outcome.replay.status_int == 401
