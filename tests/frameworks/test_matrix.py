"""The framework matrix: one shared scenario, six real apps, each wrapped from outside.

For every framework the same story is played under WebTest:

* the attack (attacker gets a session, plants it in the victim's client,
  victim logs in, attacker replays) against the bare app — it works where the
  framework's own session survives login, and fails where the framework
  rotates or keeps its state client-side — and against the app behind
  fixguard, where it always fails with fixguard's 401;
* the app's own session keeps working across requests and across login,
  bare and wrapped alike, and its cookies never reach the client when wrapped;
* logout ends the session, expires or replaces fixguard's cookie, and every
  earlier ID stays dead; a failed login changes nothing.

Each app module is the same, unmodified code in both modes: the only
difference is ``FixGuard(app, ...)`` with configuration naming the app's
session cookies and its login and logout routes.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from webtest import TestApp, TestResponse

from fixguard import FixGuard

from ..apps import plant
from . import ALICE_PASSWORD, bottle_app, django_app, falcon_app, flask_app, pyramid_app, raw_app

KEY = secrets.token_urlsafe(48)
GUARD = "fixguard"  # fixguard's cookie name with secure=False


class Browser(TestApp):
    """A WebTest client that remembers every response it got."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.responses: list[TestResponse] = []

    def do_request(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().do_request(*args, **kwargs)
        self.responses.append(response)
        return response


# -- how each framework logs in and out ---------------------------------------------------


def _form_post(path: str) -> Callable[[TestApp, str], TestResponse]:
    def login(client: TestApp, password: str) -> TestResponse:
        return client.post(path, {"username": "alice", "password": password}, expect_errors=True)

    return login


def _post(path: str) -> Callable[[TestApp], TestResponse]:
    def logout(client: TestApp) -> TestResponse:
        return client.post(path, expect_errors=True)

    return logout


def _django_login(client: TestApp, password: str) -> TestResponse:
    """Django's real login form: fetch it (CSRF token and cookie), fill it in, submit."""
    form = client.get("/login/").form
    form["username"] = "alice"
    form["password"] = password
    return form.submit(expect_errors=True)


def _django_logout(client: TestApp) -> TestResponse:
    """``LogoutView`` takes a CSRF-protected POST; the token is the one in the csrftoken cookie."""
    return client.post("/logout/", headers={"X-CSRFToken": client.cookies["csrftoken"]}, expect_errors=True)


def _falcon_login(client: TestApp, password: str) -> TestResponse:
    return client.post_json("/session", {"username": "alice", "password": password}, expect_errors=True)


def _falcon_logout(client: TestApp) -> TestResponse:
    return client.delete("/session", expect_errors=True)


def _wrap(app: Any, **options: Any) -> Any:
    return FixGuard(app, **options)


def _wrap_flask(app: Any, **options: Any) -> Any:
    app.wsgi_app = FixGuard(app.wsgi_app, **options)  # the Flask idiom: the app object stays
    return app


@dataclass(frozen=True)
class Framework:
    """One app of the matrix and the configuration that protects it."""

    module: ModuleType
    app_cookies: tuple[str, ...]
    login_rules: tuple[str, ...]
    logout_rules: tuple[str, ...]
    login: Callable[[TestApp, str], TestResponse]
    logout: Callable[[TestApp], TestResponse]
    login_status: int  # what a successful login answers
    vulnerable_bare: bool  # does the framework's own session survive login?
    ends_app_session_at_logout: bool  # does the app delete all its session cookies at logout?
    wrap: Callable[..., Any] = _wrap

    def bare(self) -> Any:
        return self.module.create_app()

    def protected(self, **options: Any) -> Any:
        return self.wrap(
            self.module.create_app(),
            secret_key=KEY,
            secure=False,
            app_cookies=self.app_cookies,
            login=self.login_rules,
            logout=self.logout_rules,
            **options,
        )


FRAMEWORKS = {
    "flask": Framework(
        flask_app, ("session",), ("POST /login",), ("POST /logout",),
        _form_post("/login"), _post("/logout"), 200,
        vulnerable_bare=False, ends_app_session_at_logout=False, wrap=_wrap_flask,
    ),
    "django": Framework(
        django_app, ("sessionid",), ("POST /login/ 302",), ("POST /logout/",),
        _django_login, _django_logout, 302,
        vulnerable_bare=False, ends_app_session_at_logout=True,
    ),
    "pyramid": Framework(
        pyramid_app, ("session",), ("POST /login",), ("POST /logout",),
        _form_post("/login"), _post("/logout"), 200,
        vulnerable_bare=False, ends_app_session_at_logout=False,
    ),
    "bottle": Framework(
        bottle_app, ("sid",), ("POST /login",), ("POST /logout",),
        _form_post("/login"), _post("/logout"), 200,
        vulnerable_bare=True, ends_app_session_at_logout=True,
    ),
    "falcon": Framework(
        falcon_app, ("falcon_sid",), ("POST /session",), ("DELETE /session",),
        _falcon_login, _falcon_logout, 200,
        vulnerable_bare=True, ends_app_session_at_logout=True,
    ),
    "raw-wsgi": Framework(
        raw_app, ("SID",), ("POST /auth/login",), ("POST /auth/logout",),
        _form_post("/auth/login"), _post("/auth/logout"), 200,
        vulnerable_bare=True, ends_app_session_at_logout=True,
    ),
}  # fmt: skip


@pytest.fixture(params=list(FRAMEWORKS))
def fw(request: pytest.FixtureRequest) -> Framework:
    return FRAMEWORKS[request.param]


# -- helpers ------------------------------------------------------------------------------


def state(client: TestApp) -> tuple[int, str]:
    """``GET /``: one more visit counted in the app's session, and who the app thinks we are."""
    text = client.get("/").text
    match = re.fullmatch(r"visits=(\d+) user=(\S+)", text.strip())
    assert match, text
    return int(match.group(1)), match.group(2)


def profile(client: TestApp) -> TestResponse:
    return client.get("/profile", expect_errors=True)


def is_alice(response: TestResponse) -> bool:
    return response.status_int == 200 and response.text.strip() == "profile of alice"


def is_anonymous(response: TestResponse) -> bool:
    return response.status_int in (302, 401) and "alice" not in response.text


def set_cookies(response: TestResponse, name: str) -> list[str]:
    return [h for h in response.headers.getall("Set-Cookie") if h.split("=", 1)[0].strip() == name]


def expired(header: str) -> bool:
    lowered = header.lower()
    return "max-age=0" in lowered or "1970" in lowered


def kinds(events: list[Any]) -> list[str]:
    return [event.kind for event in events]


def assert_vaulted(fw: Framework, *clients: Browser) -> None:
    """No response to any client ever carried one of the app's session cookies."""
    for client in clients:
        assert not set(client.cookies) & set(fw.app_cookies)
        for response in client.responses:
            for name in fw.app_cookies:
                assert not set_cookies(response, name), (response.request.path, response.headers)


def assert_refused(response: TestResponse) -> None:
    """fixguard's own refusal: 401, nothing of alice, the app not asked.

    Moments after a login or logout the refusal leaves the client's cookie
    alone: it may be the same browser's parallel request, whose answer must not
    delete the new ID that browser just received.
    """
    assert response.status_int == 401
    assert "alice" not in response.text
    assert "session has ended" in response.text
    assert set_cookies(response, GUARD) == [], response.headers


# -- the attack ---------------------------------------------------------------------------


def test_bare_app_attack(fw: Framework) -> None:
    """The framework on its own: fixation works exactly where its session survives login."""
    app = fw.bare()
    attacker, victim = Browser(app), Browser(app)
    state(attacker)
    planted = {name: attacker.cookies[name] for name in fw.app_cookies}
    for name, value in planted.items():
        plant(victim, name, value)

    assert fw.login(victim, ALICE_PASSWORD).status_int == fw.login_status
    assert is_alice(profile(victim))

    replay = profile(attacker)
    if fw.vulnerable_bare:
        assert is_alice(replay), "the bare app was expected to be exploitable"
        assert state(attacker)[1] == "alice"
    else:
        assert is_anonymous(replay), replay
        assert state(attacker)[1] == "anonymous"


def test_fixguard_blocks_the_attack(fw: Framework) -> None:
    events: list[Any] = []
    app = fw.protected(on_event=events.append)
    attacker, victim = Browser(app), Browser(app)

    assert state(attacker) == (1, "anonymous")
    assert GUARD in attacker.cookies
    planted = attacker.cookies[GUARD]
    plant(victim, GUARD, planted)

    login = fw.login(victim, ALICE_PASSWORD)
    assert login.status_int == fw.login_status
    assert [h for h in set_cookies(login, GUARD) if not expired(h)]
    assert victim.cookies[GUARD] != planted
    assert "rotation" in kinds(events)
    assert is_alice(profile(victim))

    # The replay: fixguard answers, not the app; the attacker keeps a dead ID.
    replay = profile(attacker)
    assert_refused(replay)
    assert attacker.cookies[GUARD] == planted
    assert "fixation_blocked" in kinds(events)

    # The planted ID is dead on every route, however it is presented.
    again = Browser(app)
    plant(again, GUARD, planted)
    assert_refused(again.get("/", expect_errors=True))
    explicit = TestApp(app).get("/profile", headers={"Cookie": f"{GUARD}={planted}"}, expect_errors=True)
    assert_refused(explicit)

    # The victim is unaffected, and the app's cookies never left the server.
    assert is_alice(profile(victim))
    assert state(victim)[1] == "alice"
    assert_vaulted(fw, attacker, victim, again)


# -- the app's own session keeps working ------------------------------------------------


@pytest.mark.parametrize("guarded", [False, True], ids=["bare", "fixguard"])
def test_app_session_works_across_requests(fw: Framework, guarded: bool) -> None:
    events: list[Any] = []
    client = Browser(fw.protected(on_event=events.append) if guarded else fw.bare())

    assert [state(client) for _ in range(3)] == [(1, "anonymous"), (2, "anonymous"), (3, "anonymous")]
    assert is_anonymous(profile(client))
    before = client.cookies.get(GUARD)

    assert fw.login(client, ALICE_PASSWORD).status_int == fw.login_status
    for _ in range(3):
        assert is_alice(profile(client))
    # The data the app kept before login is still there after it.
    assert [state(client) for _ in range(2)] == [(4, "alice"), (5, "alice")]

    if guarded:
        assert_vaulted(fw, client)
        ids = [v.split("=", 1)[1].split(";")[0] for r in client.responses for v in set_cookies(r, GUARD)]
        # IDs are immutable: only a response that changed the app's cookie (or logged in)
        # carries a new one; reading the profile never does.
        readers = [r for r in client.responses if r.request.path == "/profile"]
        assert readers and not any(set_cookies(r, GUARD) for r in readers)
        if fw.module.__name__.endswith("django_app"):  # server-side: one ID before login, one after
            assert len(ids) == 2, ids
        assert len(set(ids)) == len(ids), ids
        assert before in ids and client.cookies[GUARD] == ids[-1] != before
        assert kinds(events).count("rotation") == 1
        assert "fixation_blocked" not in kinds(events)


def test_failed_login_changes_nothing(fw: Framework) -> None:
    events: list[Any] = []
    client = Browser(fw.protected(on_event=events.append))
    state(client)
    state(client)
    before = client.cookies[GUARD]

    failed = fw.login(client, "not-the-password")
    assert failed.status_int != fw.login_status
    assert not set_cookies(failed, GUARD)
    assert client.cookies[GUARD] == before
    assert "rotation" not in kinds(events)
    assert state(client) == (3, "anonymous")
    assert is_anonymous(profile(client))

    assert fw.login(client, ALICE_PASSWORD).status_int == fw.login_status
    assert client.cookies[GUARD] != before
    assert is_alice(profile(client))
    assert_vaulted(fw, client)


# -- logout -------------------------------------------------------------------------------


def test_logout_ends_the_session(fw: Framework) -> None:
    events: list[Any] = []
    app = fw.protected(on_event=events.append)
    client = Browser(app)
    state(client)
    pre_login = client.cookies[GUARD]
    assert fw.login(client, ALICE_PASSWORD).status_int == fw.login_status
    assert is_alice(profile(client))
    post_login = client.cookies[GUARD]

    out = fw.logout(client)
    assert out.status_int in (200, 302), out
    assert "logout" in kinds(events)
    ours = set_cookies(out, GUARD)
    assert ours, out.headers
    if fw.ends_app_session_at_logout:
        # The app deleted its session cookie: nothing left to hold, fixguard's cookie expires.
        assert all(expired(h) for h in ours), ours
        assert GUARD not in client.cookies
    else:
        # The app keeps an (anonymous) session after logout: it gets a brand-new ID.
        assert not expired(ours[-1])
        assert client.cookies[GUARD] not in (pre_login, post_login)
    assert is_anonymous(profile(client))
    assert state(client)[1] == "anonymous"

    # Every ID from before the logout is dead, wherever it is replayed.
    for stolen in (post_login, pre_login):
        thief = Browser(app)
        plant(thief, GUARD, stolen)
        assert_refused(profile(thief))
        plant(thief, GUARD, stolen)
        assert_refused(thief.get("/", expect_errors=True))

    # Logging in again works, under yet another ID.
    assert fw.login(client, ALICE_PASSWORD).status_int == fw.login_status
    assert client.cookies[GUARD] not in (pre_login, post_login)
    assert is_alice(profile(client))
    assert_vaulted(fw, client)


# -- no change to the app ---------------------------------------------------------------


APP_MODULES = [
    *sorted({Path(f.module.__file__ or "") for f in FRAMEWORKS.values()}),
    Path(django_app.__file__ or "").with_name("django_urls.py"),
]


@pytest.mark.parametrize("path", APP_MODULES, ids=[p.stem for p in APP_MODULES])
def test_app_modules_know_nothing_of_fixguard(path: Path) -> None:
    """No import of fixguard, no fixguard header, environ key or signal: configuration does it all."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "fixguard" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "fixguard"
        elif isinstance(node, ast.Name | ast.Attribute):
            assert "fixguard" not in getattr(node, "id", getattr(node, "attr", "")).lower()
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            assert "fixguard" not in node.value.lower(), node.value
