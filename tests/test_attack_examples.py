"""The session fixation attack, played for real against the example apps.

Two WebTest clients share one app: the attacker, who visits first and keeps
his cookie, and the victim, in whose cookie jar that cookie gets planted
before she logs in. Every scenario runs against the bare app too, where the
attack must work: a test that passes without fixguard proves nothing.
"""

from __future__ import annotations

import base64
import http.cookiejar
import importlib
import io
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from webtest import TestApp, TestResponse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is a folder of the checkout, not installed
    sys.path.insert(0, str(ROOT))

signed_cookie_app = importlib.import_module("examples.signed_cookie_app")
basic_auth_app = importlib.import_module("examples.basic_auth_app")

KEY = secrets.token_urlsafe(48)
GUARD = "fixguard"  # fixguard's cookie with secure=False
GUARD_HOST = "__Host-fixguard"  # and with secure=True
HTTPS = {"wsgi.url_scheme": "https"}
ALICE_PASSWORD = "secret"  # the victim's account in both example apps


@dataclass(frozen=True)
class Example:
    """What the tests need to know about one example app."""

    module: ModuleType
    app_cookie: str
    login: Callable[..., TestResponse]
    cookie_for: Callable[[str], str]  # server-side session key -> app cookie value

    def bare(self) -> Any:
        return self.module.create_app()

    def wrapped(self, events: list[Any], **options: Any) -> Any:
        options.setdefault("secure", False)
        return self.module.protect(
            self.module.create_app(), secret_key=KEY, on_event=events.append, **options
        )

    def holder_of(self, user: str) -> str:
        """The app's own cookie value for the server-side session of ``user``."""
        keys = [k for k, data in self.module.SESSIONS.items() if data.get("user") == user]
        assert len(keys) == 1, keys
        return self.cookie_for(keys[0])


def _form_login(client: TestApp, password: str = ALICE_PASSWORD) -> TestResponse:
    data = {"username": "alice", "password": password}
    return client.post("/login", data, expect_errors=True)


def _basic_login(client: TestApp, password: str = ALICE_PASSWORD) -> TestResponse:
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    return client.post("/login", headers={"Authorization": f"Basic {token}"}, expect_errors=True)


EXAMPLES = {
    "signed_cookie": Example(signed_cookie_app, "sid", _form_login, signed_cookie_app.sign),
    "basic_auth": Example(basic_auth_app, "session", _basic_login, lambda key: key),
}


@pytest.fixture(params=sorted(EXAMPLES))
def example(request: pytest.FixtureRequest) -> Example:
    return EXAMPLES[request.param]


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    signed_cookie_app.reset()
    basic_auth_app.reset()
    yield
    signed_cookie_app.reset()
    basic_auth_app.reset()


@pytest.fixture
def events() -> list[Any]:
    return []


def kinds(events: list[Any]) -> list[str]:
    return [event.kind for event in events]


def get(client: TestApp, path: str) -> TestResponse:
    return client.get(path, expect_errors=True)


def set_cookies(response: TestResponse, name: str) -> list[str]:
    return [h for h in response.headers.getall("Set-Cookie") if h.startswith(f"{name}=")]


def expires(header: str) -> bool:
    lowered = header.lower()
    return "max-age=0" in lowered or "1970" in lowered


def plant(client: TestApp, name: str, value: str) -> None:
    """Put ``name=value`` in the client's jar as if the app had set it.

    ``TestApp.set_cookie`` would store the value in double quotes, which no
    browser sends for these values; this stores it exactly as received, for
    the host the client talks to, so a later ``Set-Cookie`` replaces it.
    """
    client.cookiejar.set_cookie(
        http.cookiejar.Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain="localhost.local",  # how http.cookiejar files the host "localhost"
            domain_specified=False,
            domain_initial_dot=False,
            path="/",
            path_specified=True,
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={},
        )
    )
    assert client.cookies[name] == value


def attack(example: Example, app: Any, cookie: str, **client_options: Any) -> dict[str, Any]:
    """Steps 1-4 of the attack; returns what each side saw."""
    attacker = TestApp(app, **client_options)
    victim = TestApp(app, **client_options)
    first = attacker.get("/")
    assert first.status_int == 200
    assert cookie in attacker.cookies, f"the attacker got no {cookie!r} cookie to plant"
    planted = attacker.cookies[cookie]
    plant(victim, cookie, planted)
    login = example.login(victim)
    assert login.status_int == 200, login
    mine = get(victim, "/profile")
    replay = get(attacker, "/profile")
    return {
        "attacker": attacker,
        "victim": victim,
        "first": first,
        "planted": planted,
        "login": login,
        "victim_profile": mine,
        "replay": replay,
    }


def assert_rejected(response: TestResponse, events: list[Any], cookie: str = GUARD) -> None:
    """fixguard's own refusal: 401, an event, no word from the app.

    Moments after the login the refusal leaves the cookie alone (it may be the
    victim's own parallel request, arriving after her new cookie).
    """
    assert response.status_int == 401
    assert "alice" not in response.text
    assert "Not logged in" not in response.text  # the app's answer: the app was not asked
    assert set_cookies(response, cookie) == [], response.headers
    assert "fixation_blocked" in kinds(events)


# -- the bare apps are vulnerable -------------------------------------------------------


def test_bare_app_is_exploited(example: Example) -> None:
    seen = attack(example, example.bare(), example.app_cookie)
    assert seen["victim_profile"].status_int == 200
    assert seen["replay"].status_int == 200
    assert "Profile of alice" in seen["replay"].text


def test_bare_app_accepts_its_own_cookie_from_anyone(example: Example) -> None:
    victim = TestApp(example.bare())
    example.login(victim)
    thief = TestApp(example.bare())
    plant(thief, example.app_cookie, example.holder_of("alice"))
    assert "Profile of alice" in get(thief, "/profile").text


# -- wrapped in fixguard ---------------------------------------------------------------


def test_wrapped_app_rejects_the_planted_id(example: Example, events: list[Any]) -> None:
    seen = attack(example, example.wrapped(events), GUARD)

    # The app's own cookie never reached the attacker: only fixguard's did.
    assert example.app_cookie not in seen["attacker"].cookies
    assert not set_cookies(seen["first"], example.app_cookie)

    # Login rotated the victim's ID, so she holds one the attacker never saw.
    new = set_cookies(seen["login"], GUARD)
    assert new and not expires(new[-1])
    assert seen["victim"].cookies[GUARD] != seen["planted"]
    assert seen["victim_profile"].status_int == 200
    assert "Profile of alice" in seen["victim_profile"].text

    assert_rejected(seen["replay"], events)
    assert seen["attacker"].cookies[GUARD] == seen["planted"]  # dead; left alone in the window

    # The old ID stays dead, on any route; the victim is unaffected.
    again = TestApp(seen["attacker"].app)
    plant(again, GUARD, seen["planted"])
    assert get(again, "/").status_int == 401
    assert "Profile of alice" in get(seen["victim"], "/profile").text


def test_logout_retires_the_id(example: Example, events: list[Any]) -> None:
    app = example.wrapped(events)
    victim = TestApp(app)
    victim.get("/")
    assert example.login(victim).status_int == 200
    assert "Profile of alice" in get(victim, "/profile").text
    stolen = victim.cookies[GUARD]

    out = victim.post("/logout")
    assert out.status_int == 200
    assert any(expires(h) for h in set_cookies(out, GUARD))
    assert GUARD not in victim.cookies
    assert get(victim, "/profile").status_int == 401
    # The app's logout ran with its own cookie: its record of alice is gone.
    assert not [d for d in example.module.SESSIONS.values() if d.get("user") == "alice"]

    thief = TestApp(app)
    for path in ("/profile", "/", "/profile"):
        plant(thief, GUARD, stolen)
        answer = get(thief, path)
        assert answer.status_int == 401
        assert "alice" not in answer.text
        assert thief.cookies[GUARD] == stolen  # dead, and left alone moments after the logout

    # Logging in again works, under a new ID.
    assert example.login(victim).status_int == 200
    assert victim.cookies[GUARD] != stolen
    assert "Profile of alice" in get(victim, "/profile").text


def test_strip_mode_serves_the_attacker_as_anonymous(example: Example, events: list[Any]) -> None:
    seen = attack(example, example.wrapped(events, on_fixation="strip"), GUARD)
    assert "Profile of alice" in seen["victim_profile"].text

    # The app itself answers, as it answers anyone without a session.
    replay = seen["replay"]
    assert replay.status_int == 401
    assert "Not logged in" in replay.text
    home = get(seen["attacker"], "/")
    assert home.status_int == 200
    assert "anonymous visitor" in home.text
    assert "alice" not in home.text

    assert "Profile of alice" in get(seen["victim"], "/profile").text


@pytest.mark.parametrize("leak", ["planted", "stolen"])
def test_client_copy_of_app_cookie_is_ignored(example: Example, events: list[Any], leak: str) -> None:
    """The attacker goes around fixguard and presents the app's own cookie.

    ``planted``: he got a genuine app cookie while the app was still exposed
    without fixguard, and plants that. ``stolen``: he somehow learnt the app's
    cookie of the victim's logged-in session. Either way the vault discards
    the client's copy, so the app never sees it.
    """
    app = example.wrapped(events)
    victim = TestApp(app)
    if leak == "planted":
        earlier = TestApp(example.bare())
        earlier.get("/")
        value = earlier.cookies[example.app_cookie]
        plant(victim, example.app_cookie, value)
        assert example.login(victim).status_int == 200
    else:
        assert example.login(victim).status_int == 200
        value = example.holder_of("alice")
    assert "Profile of alice" in get(victim, "/profile").text

    attacker = TestApp(app)
    plant(attacker, example.app_cookie, value)
    answer = get(attacker, "/profile")
    assert answer.status_int == 401
    assert "alice" not in answer.text

    # Even alongside a live fixguard session of his own.
    attacker.get("/")
    assert GUARD in attacker.cookies
    plant(attacker, example.app_cookie, value)
    answer = get(attacker, "/profile")
    assert answer.status_int == 401
    assert "alice" not in answer.text
    assert "alice" not in get(attacker, "/").text

    if leak == "planted":
        # fixguard dropped the planted copy at login: the app never bound it to alice.
        (record,) = [d for k, d in example.module.SESSIONS.items() if example.cookie_for(k) == value]
        assert "user" not in record
    else:
        # The bare app, given the same cookie, gives the victim away.
        bare = TestApp(example.bare())
        plant(bare, example.app_cookie, value)
        assert "Profile of alice" in get(bare, "/profile").text


def test_secure_cookie_over_https(example: Example, events: list[Any]) -> None:
    app = example.wrapped(events, secure=True)
    seen = attack(example, app, GUARD_HOST, extra_environ=HTTPS)

    (header,) = set_cookies(seen["first"], GUARD_HOST)
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "path"} <= attributes
    assert "domain" not in attributes
    assert "path=/" in header.lower().replace(" ", "")
    assert GUARD not in seen["attacker"].cookies

    assert "Profile of alice" in seen["victim_profile"].text
    assert_rejected(seen["replay"], events, GUARD_HOST)


def test_failed_login_does_not_rotate_or_log_in(example: Example, events: list[Any]) -> None:
    app = example.wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    attacker.get("/")
    plant(victim, GUARD, attacker.cookies[GUARD])
    assert example.login(victim, password="wrong").status_int == 401
    assert victim.cookies[GUARD] == attacker.cookies[GUARD]
    assert get(attacker, "/profile").status_int == 401
    assert "fixation_blocked" not in kinds(events)


# -- fixguard demo ---------------------------------------------------------------------


def test_demo_exploits_bare_and_blocks_protected() -> None:
    from fixguard.demo import run_demo

    out = io.StringIO()
    assert run_demo(out) == 0, out.getvalue()
    text = out.getvalue()
    assert text.count("EXPLOITED") == 4  # the three WSGI shapes and the ASGI example
    assert text.count("BLOCKED") == 4
    # Cookie values are cut short: no long opaque token is ever printed whole.
    assert not re.search(r"[A-Za-z0-9_\-]{20,}", text), text


def test_cli_demo_plays_all_three_shapes_and_exits_0() -> None:
    """``fixguard demo`` as a user runs it: every seed's shape, exploited bare, blocked protected."""
    done = subprocess.run(
        [sys.executable, "-m", "fixguard", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("Summary:")[1]
    for name in ("signed_cookie_app", "basic_auth_app", "bearer_app"):
        assert re.search(rf"{name} +bare +exploited +as expected", summary), summary
        assert re.search(rf"{name} +protected by FixGuard +blocked +as expected", summary), summary
    assert re.search(r"asgi_app +bare +exploited +as expected", summary), summary
    assert re.search(r"asgi_app +protected +blocked +as expected", summary), summary
    bearer = done.stdout.split("== examples/bearer_app.py")[1].split("Summary:")[0]
    bare, protected = bearer.split("-- protected by FixGuard")
    # Bare, the app keeps the token the attacker made up; protected, it is burned at login.
    assert "the very token the attacker planted" in bare and "EXPLOITED" in bare
    assert "a fresh token" in protected and "fixguard: token_blocked" in protected
    assert "GET /me -> 401" in protected and "BLOCKED" in protected
    assert not re.search(r"[A-Za-z0-9_\-]{20,}", done.stdout)  # no token or ID printed whole


def test_demo_fails_when_the_bearer_api_is_not_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit rule covers the new shape: a protected run that is exploited is exit status 1."""
    from fixguard.demo import run_demo

    bearer_app = importlib.import_module("examples.bearer_app")
    monkeypatch.setattr(bearer_app, "protect", lambda app, **options: app)  # "protected" = bare
    out = io.StringIO()
    assert run_demo(out) == 1
    unexpected = r"bearer_app +protected by FixGuard +exploited +UNEXPECTED, wanted blocked"
    assert re.search(unexpected, out.getvalue())


def test_demo_without_flask_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from fixguard import demo

    real = importlib.util.find_spec

    def no_flask(name: str, *args: Any) -> Any:
        return None if name == "flask" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_flask)
    out = io.StringIO()
    assert demo.run_demo(out) == 2
    assert "pip install -e '.[examples]'" in out.getvalue()


def test_demo_without_examples_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import fixguard
    from fixguard import demo

    # An installed copy: the package directory has no examples/ beside it.
    monkeypatch.setattr(fixguard, "__file__", str(tmp_path / "fixguard" / "__init__.py"))
    out = io.StringIO()
    assert demo.run_demo(out) == 2
    assert "examples" in out.getvalue()
    assert "pip install -e '.[examples]'" in out.getvalue()


def test_demo_module_does_not_import_flask() -> None:
    code = "import sys, fixguard.demo; assert 'flask' not in sys.modules, 'flask imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
