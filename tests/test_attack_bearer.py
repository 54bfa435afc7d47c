"""The bearer-token shape of session fixation, played for real against ``examples/bearer_app.py``.

Three flaws, each attacked bare (the attack must work, or the wrapped run
proves nothing) and behind fixguard (the attacker gets a 401 or an anonymous
answer, never alice):

* ``POST /login`` echoes the bearer token the client presented: the attacker
  chooses a token, plants it so the victim's login request carries it, and
  replays it after she logged in.
* ``POST /jwt/login`` issues JWTs and never revokes one: a JWT known before a
  login, or before a logout, still opens alice's account after it.
* ``POST /cookie/login`` echoes a planted ``api_token`` cookie.

Then what the token vault promises on top (translation, foreign tokens
dropped, logout and revoke-by-subject, elevate, mixed cookie + token apps,
Content-Length, bodies it must leave alone), and property tests for the
``Authorization`` header handling: whatever a client sends, no bearer token
reaches the app unless fixguard minted it.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webtest import TestApp, TestResponse

from fixguard import FixGuard, MemoryStore

from .apps import plant

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is a folder of the checkout, not installed
    sys.path.insert(0, str(ROOT))

bearer_app = importlib.import_module("examples.bearer_app")

KEY = secrets.token_urlsafe(48)
GUARD = "fixguard"  # fixguard's cookie with secure=False
PREFIX = "fgt_"
ALICE = {"username": "alice", "password": "secret"}
BOB = {"username": "bob", "password": "hunter2"}
ATTACKER_TOKEN = "attacker-chosen-token-0123456789"


# -- helpers -----------------------------------------------------------------------------


@dataclass
class Spy:
    """Innermost WSGI layer: records what the app itself received."""

    app: Callable[..., Iterable[bytes]]
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.seen.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ.get("PATH_INFO", ""),
                "authorization": environ.get("HTTP_AUTHORIZATION"),
                "cookie": environ.get("HTTP_COOKIE", ""),
            }
        )
        return self.app(environ, start_response)

    def last(self, path: str) -> dict[str, Any]:
        return [s for s in self.seen if s["path"] == path][-1]


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    bearer_app.reset()
    yield
    bearer_app.reset()


@pytest.fixture
def events() -> list[Any]:
    return []


def kinds(events: list[Any]) -> list[str]:
    return [event.kind for event in events]


def bare() -> Any:
    return bearer_app.create_app()


def wrapped(events: list[Any], **options: Any) -> tuple[Any, Spy]:
    """The example behind fixguard (its own ``protect``), with a spy between the two."""
    app = bearer_app.create_app()
    spy = Spy(app.wsgi_app)
    app.wsgi_app = spy
    options.setdefault("secure", False)
    bearer_app.protect(app, secret_key=KEY, on_event=events.append, **options)
    return app, spy


def auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def login(
    client: TestApp,
    path: str = "/login",
    *,
    token: str | None = None,
    credentials: dict[str, str] = ALICE,
    query: str = "",
) -> TestResponse:
    return client.post_json(path + query, credentials, headers=auth(token), expect_errors=True)


def me(client: TestApp, token: str | None = None, path: str = "/me") -> TestResponse:
    return client.get(path, headers=auth(token), expect_errors=True)


def logout(client: TestApp, token: str | None = None) -> TestResponse:
    return client.post("/logout", headers=auth(token), expect_errors=True)


def user_of(response: TestResponse) -> str | None:
    """Who the app says the caller is (``None``: a refusal, the app's or fixguard's)."""
    if response.status_int != 200:
        return None
    return str(response.json["user"])


def assert_not_alice(response: TestResponse) -> None:
    assert response.status_int in (401, 409), (response.status, response.text)
    assert "alice" not in response.text


def assert_refused(spy: Spy, events: list[Any], kind: str, send: Callable[[], TestResponse]) -> TestResponse:
    """``send()`` is answered by fixguard itself: 401, the app not asked, an event of ``kind``."""
    before = len(spy.seen)
    response = send()
    assert response.status_int == 401, (response.status, response.text)
    assert "alice" not in response.text
    assert len(spy.seen) == before, "the app was asked"
    assert kind in kinds(events), kinds(events)
    return response


def access_token(response: TestResponse) -> str:
    token = response.json["access_token"]
    assert isinstance(token, str)
    return token


def assert_fgt(token: str) -> None:
    assert token.startswith(PREFIX), token
    assert len(token) >= len(PREFIX) + 40, token


def assert_content_length(response: TestResponse) -> None:
    assert int(response.headers["Content-Length"]) == len(response.body), response.headers


def set_cookies(response: TestResponse, name: str) -> list[str]:
    return [h for h in response.headers.getall("Set-Cookie") if h.startswith(f"{name}=")]


def bound_tokens(user: str) -> list[str]:
    """The app's own opaque tokens bound to ``user``."""
    return [token for token, data in bearer_app.TOKENS.items() if data["user"] == user]


# == the bare app is vulnerable ===========================================================


def test_bare_echo_login_hands_the_attacker_the_victims_account() -> None:
    app = bare()
    attacker, victim = TestApp(app), TestApp(app)
    assert me(attacker, ATTACKER_TOKEN).status_int == 401  # nobody yet

    # The victim's client sends the token the attacker planted on its login.
    answer = login(victim, token=ATTACKER_TOKEN)
    assert answer.status_int == 200
    assert access_token(answer) == ATTACKER_TOKEN  # echoed
    assert user_of(me(victim, ATTACKER_TOKEN)) == "alice"

    # The attacker replays the token he chose: he is alice.
    assert user_of(me(attacker, ATTACKER_TOKEN)) == "alice"


def test_bare_echo_login_with_a_token_the_attacker_was_issued() -> None:
    app = bare()
    attacker, victim = TestApp(app), TestApp(app)
    mine = access_token(login(attacker, credentials=BOB))
    assert user_of(me(attacker, mine)) == "bob"
    login(victim, token=mine)
    assert user_of(me(attacker, mine)) == "alice"


def test_bare_jwt_outlives_logout_and_the_next_login() -> None:
    app = bare()
    victim, attacker = TestApp(app), TestApp(app)
    old = access_token(login(victim, "/jwt/login"))
    assert old.startswith("eyJ")
    assert me(victim, old).json == {"user": "alice", "via": "jwt", "mfa": False}
    # A copy taken from the shared machine before the victim logged out...
    assert logout(victim, old).status_int == 200
    assert user_of(me(attacker, old)) == "alice"
    # ...and before she logged in again (her client still sending the old one).
    new = access_token(login(victim, "/jwt/login", token=old))
    assert new != old
    assert user_of(me(attacker, old)) == "alice"


def test_bare_cookie_login_keeps_the_planted_cookie() -> None:
    app = bare()
    attacker, victim = TestApp(app), TestApp(app)
    plant(victim, bearer_app.COOKIE, ATTACKER_TOKEN)
    answer = login(victim, "/cookie/login")
    assert answer.status_int == 200
    assert victim.cookies[bearer_app.COOKIE] == ATTACKER_TOKEN
    plant(attacker, bearer_app.COOKIE, ATTACKER_TOKEN)
    assert user_of(me(attacker, path="/cookie/me")) == "alice"


def test_bare_elevate_raises_the_planted_token() -> None:
    app = bare()
    attacker, victim = TestApp(app), TestApp(app)
    login(victim, token=ATTACKER_TOKEN)
    up = victim.post_json("/elevate", {"code": bearer_app.MFA_CODE}, headers=auth(ATTACKER_TOKEN))
    assert access_token(up) == ATTACKER_TOKEN
    assert me(attacker, ATTACKER_TOKEN).json == {"user": "alice", "via": "token", "mfa": True}


def test_bare_web_session_survives_logout() -> None:
    """The mixed app's second channel: a copy of the signed session cookie outlives logout."""
    app = bare()
    victim = TestApp(app)
    token = access_token(login(victim))
    copy = victim.cookies["session"]
    assert me(victim).json["via"] == "session"
    logout(victim, token)
    assert me(victim).status_int == 401
    thief = TestApp(app)
    plant(thief, "session", copy)
    assert user_of(me(thief)) == "alice"


# == behind fixguard: the attacks fail ====================================================


def test_echo_attack_is_blocked(events: list[Any]) -> None:
    app, spy = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)

    answer = login(victim, token=ATTACKER_TOKEN)
    assert answer.status_int == 200
    # The planted token never reached the app: it minted one of its own...
    assert spy.last("/login")["authorization"] is None
    assert ATTACKER_TOKEN not in bearer_app.TOKENS
    (app_token,) = bound_tokens("alice")
    # ...which the client never sees: it holds a fixguard token instead.
    mine = access_token(answer)
    assert_fgt(mine)
    assert app_token not in answer.text
    assert all(app_token not in value for _, value in answer.headerlist)
    assert "Fixguard-Subject" not in answer.headers
    assert_content_length(answer)

    # The victim's fixguard token works, translated to the app's.
    assert me(TestApp(app), mine).json == {"user": "alice", "via": "token", "mfa": False}
    assert spy.last("/me")["authorization"] == f"Bearer {app_token}"

    # The attacker replays his token: burned at the login, refused.
    assert_refused(spy, events, "token_blocked", lambda: me(attacker, ATTACKER_TOKEN))
    assert user_of(me(attacker, ATTACKER_TOKEN)) is None


def test_echo_attack_with_the_attackers_own_fixguard_token(events: list[Any]) -> None:
    """The attacker logs in as bob through fixguard and plants the fgt token he got."""
    app, spy = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    mine = access_token(login(attacker, credentials=BOB))
    assert_fgt(mine)
    assert user_of(me(attacker, mine)) == "bob"

    answer = login(victim, token=mine)
    assert answer.status_int == 200
    hers = access_token(answer)
    assert_fgt(hers)
    assert hers != mine
    assert user_of(me(victim, hers)) == "alice"

    # Whatever the app did with bob's token at this login, the attacker cannot reach it.
    assert_refused(spy, events, "fixation_blocked", lambda: me(attacker, mine))
    assert user_of(me(TestApp(app), mine)) is None
    assert user_of(me(victim, hers)) == "alice"


def test_jwt_known_before_login_or_logout_is_useless(events: list[Any]) -> None:
    app, spy = wrapped(events)
    victim, attacker = TestApp(app), TestApp(app)

    first = login(victim, "/jwt/login")
    old = access_token(first)
    assert_fgt(old)
    assert "eyJ" not in first.text  # the JWT itself never leaves the server
    assert_content_length(first)
    assert me(victim, old).json == {"user": "alice", "via": "jwt", "mfa": False}
    app_jwt = spy.last("/me")["authorization"].removeprefix("Bearer ")
    assert app_jwt.startswith("eyJ")  # translated into the app's own JWT

    # Copied from the shared machine; the victim logs in again, her client still sending it.
    new = access_token(login(victim, "/jwt/login", token=old))
    assert_fgt(new)
    assert new != old
    assert_refused(spy, events, "fixation_blocked", lambda: me(attacker, old))
    assert user_of(me(victim, new)) == "alice"

    # She logs out: the new token dies too, although the JWT behind it is still valid to the app.
    assert logout(victim, new).status_int == 200
    assert_not_alice(me(attacker, new))
    assert_not_alice(me(attacker, old))
    assert user_of(me(TestApp(bearer_app.create_app()), app_jwt)) == "alice"  # the app's flaw remains

    # And that raw JWT, were it to leak, is a foreign token: dropped before the app.
    leaked = me(attacker, app_jwt)
    assert leaked.json == {"error": "missing token"}  # the app's answer to no token
    assert spy.last("/me")["authorization"] is None


def test_cookie_token_attack_is_blocked(events: list[Any]) -> None:
    app, spy = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    plant(victim, bearer_app.COOKIE, ATTACKER_TOKEN)

    answer = login(victim, "/cookie/login")
    assert answer.status_int == 200
    assert ATTACKER_TOKEN not in spy.last("/cookie/login")["cookie"]  # the planted cookie was dropped
    assert ATTACKER_TOKEN not in bearer_app.TOKENS
    assert not set_cookies(answer, bearer_app.COOKIE)  # the app's cookie stays in the vault
    assert set_cookies(answer, GUARD)
    assert user_of(me(victim, path="/cookie/me")) == "alice"

    plant(attacker, bearer_app.COOKIE, ATTACKER_TOKEN)
    replay = me(attacker, path="/cookie/me")
    assert replay.json == {"error": "missing token"}  # the app saw no cookie at all

    # Nor does the real app cookie help him, were he to learn it.
    (app_token,) = bound_tokens("alice")
    plant(attacker, bearer_app.COOKIE, app_token)
    assert me(attacker, path="/cookie/me").json == {"error": "missing token"}


def test_cookie_token_attack_with_a_planted_fixguard_cookie(events: list[Any]) -> None:
    app, _ = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    assert login(attacker, "/cookie/login", credentials=BOB).status_int == 200
    planted = attacker.cookies[GUARD]
    assert user_of(me(attacker, path="/cookie/me")) == "bob"

    plant(victim, GUARD, planted)
    assert login(victim, "/cookie/login").status_int == 200
    assert victim.cookies[GUARD] != planted
    assert user_of(me(victim, path="/cookie/me")) == "alice"

    replay = me(attacker, path="/cookie/me")
    assert replay.status_int == 401
    assert "alice" not in replay.text
    assert "fixation_blocked" in kinds(events)


# == behind fixguard: what the token vault promises ==========================================


def test_foreign_bearer_tokens_are_dropped(events: list[Any]) -> None:
    app, spy = wrapped(events)
    client = TestApp(app)
    login(client)  # alice has a session and a bound app token now
    (app_token,) = bound_tokens("alice")
    for foreign in (app_token, "made-up", bearer_app.issue_jwt("alice"), PREFIX + "forged.signature"):
        answer = me(TestApp(app), foreign)
        assert answer.status_int == 401
        assert answer.json == {"error": "missing token"}, foreign
        assert spy.last("/me")["authorization"] is None


def test_a_bearer_token_is_dropped_but_the_cookie_session_still_works(events: list[Any]) -> None:
    app, spy = wrapped(events)
    victim = TestApp(app)
    login(victim)
    answer = me(victim, "made-up")
    assert answer.json == {"user": "alice", "via": "session", "mfa": False}
    assert spy.last("/me")["authorization"] is None


def test_basic_credentials_pass_untouched(events: list[Any]) -> None:
    app, spy = wrapped(events)
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()
    TestApp(app).get("/me", headers={"Authorization": basic}, expect_errors=True)
    assert spy.last("/me")["authorization"] == basic


def test_logout_by_bearer_kills_the_token_and_the_app_binding(events: list[Any]) -> None:
    app, spy = wrapped(events)
    victim = TestApp(app)
    token = access_token(login(victim))
    (app_token,) = bound_tokens("alice")
    api = TestApp(app)  # an API client: no cookie, only the token
    assert logout(api, token).status_int == 200
    assert spy.last("/logout")["authorization"] == f"Bearer {app_token}"  # the app's logout ran on it
    assert bound_tokens("alice") == []
    assert_refused(spy, events, "fixation_blocked", lambda: me(TestApp(app), token))


def test_revoke_by_subject_ends_tokens_and_cookies(events: list[Any]) -> None:
    store = MemoryStore()
    app, _ = wrapped(events, store=store)
    web = TestApp(app)
    token = access_token(login(web))
    jwt_token = access_token(login(TestApp(app), "/jwt/login"))
    bobs = access_token(login(TestApp(app), credentials=BOB))
    assert user_of(me(web)) == "alice"
    assert user_of(me(TestApp(app), token)) == "alice"

    assert store.revoke("alice") >= 2
    assert_not_alice(me(TestApp(app), token))
    assert_not_alice(me(TestApp(app), jwt_token))
    assert_not_alice(me(web))
    assert user_of(me(TestApp(app), bobs)) == "bob"  # only alice's


def test_elevate_rotates_the_token(events: list[Any]) -> None:
    app, spy = wrapped(events)
    victim, attacker = TestApp(app), TestApp(app)
    before = access_token(login(victim, token=ATTACKER_TOKEN))
    up = victim.post_json("/elevate", {"code": bearer_app.MFA_CODE}, headers=auth(before), expect_errors=True)
    assert up.status_int == 200
    after = access_token(up)
    assert_fgt(after)
    assert after != before
    assert_content_length(up)
    assert me(victim, after).json == {"user": "alice", "via": "token", "mfa": True}

    assert_refused(spy, events, "fixation_blocked", lambda: me(attacker, before))
    assert_not_alice(me(attacker, ATTACKER_TOKEN))


def test_failed_elevate_keeps_the_token(events: list[Any]) -> None:
    app, _ = wrapped(events)
    victim = TestApp(app)
    token = access_token(login(victim))
    wrong = victim.post_json("/elevate", {"code": "000000"}, headers=auth(token), expect_errors=True)
    assert wrong.status_int == 403
    assert wrong.json == {"error": "wrong code"}
    assert me(victim, token).json == {"user": "alice", "via": "token", "mfa": False}


def test_failed_login_body_is_untouched(events: list[Any]) -> None:
    app, _ = wrapped(events)
    answer = login(TestApp(app), credentials={"username": "alice", "password": "wrong"})
    assert answer.status_int == 401
    assert answer.json == {"error": "invalid credentials"}


def test_mixed_app_one_login_rotates_both_channels(events: list[Any]) -> None:
    app, _ = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    attacker.get("/")
    planted_cookie = attacker.cookies[GUARD]
    plant(victim, GUARD, planted_cookie)
    assert victim.get("/").json == {"user": None, "visits": 2}  # one anonymous session, shared

    answer = login(victim, token=ATTACKER_TOKEN)
    token = access_token(answer)
    assert_fgt(token)
    new_cookie = [h for h in set_cookies(answer, GUARD) if "max-age=0" not in h.lower()]
    assert new_cookie, answer.headers
    assert victim.cookies[GUARD] != planted_cookie

    # Both channels lead to the same, new session.
    assert me(victim).json == {"user": "alice", "via": "session", "mfa": False}
    assert me(TestApp(app), token).json["user"] == "alice"
    # Both of the attacker's handles are dead.
    assert_not_alice(me(attacker))
    assert_not_alice(me(attacker, ATTACKER_TOKEN))


@pytest.mark.parametrize("channel", ["bearer", "cookie"])
def test_mixed_app_one_logout_ends_both_channels(events: list[Any], channel: str) -> None:
    app, _ = wrapped(events)
    browser = TestApp(app)
    token = access_token(login(browser))
    api = TestApp(app)  # the same user's API client, holding only the token
    assert user_of(me(api, token)) == "alice"
    assert user_of(me(browser)) == "alice"

    if channel == "bearer":
        assert logout(api, token).status_int == 200
    else:
        assert logout(browser).status_int == 200
    assert_not_alice(me(api, token))
    assert_not_alice(me(browser))
    assert_not_alice(me(TestApp(app), token))


def test_token_login_response_sets_the_cookie_and_binds_the_token_to_it(events: list[Any]) -> None:
    """After a bearer logout, the browser's cookie (same session) is refused by fixguard itself."""
    app, _ = wrapped(events)
    browser = TestApp(app)
    token = access_token(login(browser))
    cookie = browser.cookies[GUARD]
    logout(TestApp(app), token)
    thief = TestApp(app)
    plant(thief, GUARD, cookie)
    refused = me(thief)
    assert refused.status_int == 401
    assert "alice" not in refused.text
    assert "fixation_blocked" in kinds(events)


def test_non_json_login_body_passes_untouched(events: list[Any]) -> None:
    app, _ = wrapped(events)
    client = TestApp(app)
    answer = login(client, query="?format=form")
    assert answer.status_int == 200
    assert answer.content_type == "application/x-www-form-urlencoded"
    (app_token,) = bound_tokens("alice")
    assert answer.text == f"access_token={app_token}&token_type=bearer"
    assert_content_length(answer)
    assert "token_body_skipped" in kinds(events)
    # The app's raw token is foreign to fixguard: it does not reach the app.
    assert me(TestApp(app), app_token).json == {"error": "missing token"}


def test_oversized_login_body_passes_untouched(events: list[Any]) -> None:
    app, _ = wrapped(events, max_token_body=32)
    answer = login(TestApp(app))
    assert answer.status_int == 200
    (app_token,) = bound_tokens("alice")
    assert answer.json["access_token"] == app_token
    assert_content_length(answer)
    assert "token_body_skipped" in kinds(events)


def test_nested_token_field(events: list[Any]) -> None:
    """A dotted path names a nested field; fields not named are left alone."""

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ.get("HTTP_AUTHORIZATION"))
        body = json.dumps({"data": {"token": "app-nested", "other": "app-other"}, "token": "top"}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    seen: list[str | None] = []
    guard = FixGuard(api, secret_key=KEY, secure=False, token_fields=("data.token",), on_event=events.append)
    client = TestApp(guard)
    answer = client.post("/login")
    data = answer.json
    assert_fgt(data["data"]["token"])
    assert data["data"]["other"] == "app-other"
    assert data["token"] == "top"
    assert_content_length(answer)
    client.get("/x", headers=auth(data["data"]["token"]))
    assert seen[-1] == "Bearer app-nested"


def test_passthrough_path_lets_a_foreign_token_reach_the_app(events: list[Any]) -> None:
    app, spy = wrapped(events, token_passthrough=("GET /me",))
    service = bearer_app.issue_jwt("svc")
    assert me(TestApp(app), service).json == {"user": "svc", "via": "jwt", "mfa": False}
    assert spy.last("/me")["authorization"] == f"Bearer {service}"
    # Elsewhere it is still dropped.
    up = TestApp(app).post_json("/elevate", {"code": "x"}, headers=auth(service), expect_errors=True)
    assert up.json == {"error": "missing token"}


def test_passthrough_does_not_revive_a_token_burned_at_login(events: list[Any]) -> None:
    """A token-exchange login lets the presented token reach the app, which echoes it.

    fixguard still burns it: replayed on a passthrough path it must be refused,
    not handed to the app that has just bound it to alice.
    """
    app, spy = wrapped(events, token_passthrough=("POST /login", "GET /me"))
    attacker, victim = TestApp(app), TestApp(app)
    answer = login(victim, token=ATTACKER_TOKEN)
    assert spy.last("/login")["authorization"] == f"Bearer {ATTACKER_TOKEN}"
    assert bearer_app.TOKENS[ATTACKER_TOKEN]["user"] == "alice"  # the app did bind it
    mine = access_token(answer)
    assert_fgt(mine)
    assert user_of(me(victim, mine)) == "alice"

    replay = me(attacker, ATTACKER_TOKEN)
    assert_not_alice(replay)
    assert "token_blocked" in kinds(events)


def test_https_and_secure_cookie(events: list[Any]) -> None:
    app, _ = wrapped(events, secure=True)
    client = TestApp(app, extra_environ={"wsgi.url_scheme": "https"})
    answer = login(client, token=ATTACKER_TOKEN)
    assert_fgt(access_token(answer))
    assert set_cookies(answer, "__Host-fixguard")
    assert user_of(me(client)) == "alice"


def test_events_never_carry_a_token(events: list[Any]) -> None:
    app, _ = wrapped(events)
    client = TestApp(app)
    token = access_token(login(client, token=ATTACKER_TOKEN))
    (app_token,) = bound_tokens("alice")
    me(client, ATTACKER_TOKEN)
    me(client, token)
    logout(client, token)
    me(client, token)
    login(client, query="?format=form")  # a skipped body
    assert {"token_blocked", "fixation_blocked", "token_body_skipped"} <= set(kinds(events))
    dump = json.dumps([event.as_dict() for event in events], default=str)
    for secret in (token, ATTACKER_TOKEN, token.removeprefix(PREFIX).split(".")[0], app_token):
        assert secret not in dump


# == property tests: the Authorization header, whatever the client sends ====================


class Target:
    """One wrapped raw-WSGI API, with a live fixguard token, a retired one and a burned foreign one."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.issued = iter(f"app-token-{n}" for n in range(1_000_000))
        self.events: list[Any] = []
        self.guard = FixGuard(
            self.api, secret_key=KEY, secure=False, token_fields=("access_token",),
            login=("POST /login",), logout=("POST /logout",), on_event=self.events.append,
        )  # fmt: skip
        self.burned = "planted-foreign-token"
        retired = self.login(presenting=None)  # becomes retired by the next login, which presents it
        self.live = self.login(presenting=retired)
        self.retired = retired
        self.login(presenting=self.burned)
        self.live_app_token = self.app_token_of(self.live)

    def api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.seen.append(environ.get("HTTP_AUTHORIZATION"))
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/login":
            body = json.dumps({"access_token": next(self.issued)}).encode()
        else:
            body = b"{}"
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def call(self, method: str, path: str, authorization: str | None) -> tuple[str, bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "192.0.2.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0), "wsgi.multithread": False,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }  # fmt: skip
        if authorization is not None:
            environ["HTTP_AUTHORIZATION"] = authorization
        status: list[str] = []

        def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(s)
            return lambda data: None

        body = b"".join(self.guard(environ, start_response))
        return status[-1], body

    def login(self, presenting: str | None) -> str:
        status, body = self.call("POST", "/login", None if presenting is None else f"Bearer {presenting}")
        assert status.startswith("200"), status
        token = json.loads(body)["access_token"]
        assert token.startswith(PREFIX), token
        return str(token)

    def app_token_of(self, token: str) -> str:
        self.seen.clear()
        status, _ = self.call("GET", "/me", f"Bearer {token}")
        assert status.startswith("200"), status
        (value,) = self.seen
        assert value is not None and value.startswith("Bearer app-token-"), value
        return value.removeprefix("Bearer ")


_TARGET: list[Target] = []


def target() -> Target:
    if not _TARGET:
        _TARGET.append(Target())
    return _TARGET[0]


def bearer_like(value: str) -> bool:
    """Would some lenient parser find a bearer credential in this header value?

    Splits on commas (a header list, or two headers a server joined) and on
    any whitespace Python knows; a part whose first word is ``bearer`` in any
    case counts. Stricter parsers (werkzeug's, ``startswith("Bearer ")``) see
    a subset of these.
    """
    return any((words := part.split()) and words[0].lower() == "bearer" for part in value.split(","))


TOKEN_SHAPED = r"[A-Za-z0-9_\-]{10,60}\.[A-Za-z0-9_\-]{10,50}"  # like fgt_<id>.<sig>, but forged
LATIN1 = st.characters(min_codepoint=0, max_codepoint=255)
SPACES = st.sampled_from([" ", "  ", "\t", " \t ", "\x0b", "\x0c", "\xa0", "\x85", "", " " * 300])
SCHEMES = st.sampled_from(
    ["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "basic", "Digest", "Token", "Bear"]
)


@st.composite
def hostile_values(draw: st.DrawFn) -> tuple[str, str]:
    """``(value, origin)``: ``origin`` names the token it was built from (``other``: none of ours)."""
    t = target()
    origin = draw(st.sampled_from(["live", "retired", "burned", "other", "other"]))
    token = {"live": t.live, "retired": t.retired, "burned": t.burned, "other": None}[origin]
    if token is None:
        token = draw(
            st.one_of(
                st.text(LATIN1, max_size=80),
                st.builds(lambda s: PREFIX + s, st.text(LATIN1, max_size=80)),
                st.builds(lambda s: PREFIX + s, st.from_regex(TOKEN_SHAPED, fullmatch=True)),
                st.just(t.live_app_token),  # the app's own token, presented directly
                st.just(t.live.upper()),
            )
        )
    else:
        mutation = draw(st.sampled_from(["same", "truncate", "append", "insert", "replace"]))
        if mutation != "same":
            where = draw(st.integers(0, len(token) - 1))
            char = draw(LATIN1)
            token = {
                "truncate": token[:where],
                "append": token + char,
                "insert": token[:where] + char + token[where:],
                "replace": token[:where] + char + token[where + 1 :],
            }[mutation]
    shape = draw(st.integers(0, 6))
    scheme, space = draw(SCHEMES), draw(SPACES)
    if shape == 0:
        value = f"{scheme}{space}{token}"
    elif shape == 1:  # several credentials in one header, or two headers joined
        other = draw(st.text(LATIN1, max_size=40))
        value = draw(
            st.sampled_from(
                [
                    f"{scheme} {token}, Bearer {other}",
                    f"Basic {other}, {scheme} {token}",
                    f"{scheme} {token},{scheme} {token}",
                    f"{scheme} {other} {token}",
                ]
            )
        )
    elif shape == 2:  # huge
        value = f"{scheme}{space}{token}" + draw(st.sampled_from([" ", "a", ",", "="])) * draw(
            st.integers(1_000, 200_000)
        )
    elif shape == 3:  # leading junk
        value = draw(st.text(LATIN1, max_size=10)) + f"{scheme}{space}{token}"
    elif shape == 4:
        value = draw(st.text(LATIN1, max_size=300))
    elif shape == 5:
        value = f"{scheme} {token} " + draw(st.text(LATIN1, max_size=20))
    else:
        value = token
    return value, origin


@pytest.mark.parametrize("method, path", [("GET", "/me"), ("POST", "/other")])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_values())
def test_property_no_unminted_bearer_reaches_the_app(method: str, path: str, case: tuple[str, str]) -> None:
    value, origin = case
    t = target()
    t.seen.clear()
    status, body = t.call(method, path, value)  # never raises
    code = int(status.split()[0])
    assert code < 500, (status, body)
    if not t.seen:  # fixguard answered itself: only for a retired or burned token
        assert code == 401, status
        assert origin in ("retired", "burned"), (value[:200], origin)
        return
    assert code == 200
    (received,) = t.seen
    if received is None:
        return  # dropped: fine, whatever it was
    if received.startswith(("Bearer ", "bearer ")) and received.split()[-1] == t.live_app_token:
        assert received == f"Bearer {t.live_app_token}", received
        assert origin == "live", (value[:200], origin)  # translated only from the live token
        return
    # Anything else reached the app exactly as sent, and is no bearer credential.
    assert received == value, (received[:200], value[:200])
    assert not bearer_like(received), received[:200]


@settings(max_examples=200, deadline=None)
@given(credentials=st.binary(max_size=200), scheme=st.sampled_from(["Basic", "basic", "BASIC"]))
def test_property_basic_credentials_pass_untouched(credentials: bytes, scheme: str) -> None:
    t = target()
    t.seen.clear()
    value = f"{scheme} {base64.b64encode(credentials).decode()}"
    status, _ = t.call("GET", "/me", value)
    assert status.startswith("200"), status
    assert t.seen == [value]


@settings(max_examples=100, deadline=None)
@given(spaces=st.sampled_from([" ", "  ", "\t"]), scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]))
def test_property_live_token_is_translated_or_dropped_never_leaked(spaces: str, scheme: str) -> None:
    t = target()
    t.seen.clear()
    status, _ = t.call("GET", "/me", f"{scheme}{spaces}{t.live}")
    assert status.startswith("200"), status
    assert t.seen in ([f"Bearer {t.live_app_token}"], [None]), t.seen
    if (scheme, spaces) == ("Bearer", " "):
        assert t.seen == [f"Bearer {t.live_app_token}"]


def test_property_target_replays_are_refused() -> None:
    t = target()
    for token in (t.retired, t.burned):
        t.seen.clear()
        status, _ = t.call("GET", "/me", f"Bearer {token}")
        assert status.startswith("401"), (token, status)
        assert t.seen == []


# == bearer credentials fixguard's parser does not see, read by common app-side parsers ======


@pytest.mark.parametrize(
    "separator",
    ["\t", " \t", "\t ", "\x0b", "\x0c"],
    ids=["tab", "space-tab", "tab-space", "vtab", "formfeed"],
)
def test_echo_attack_with_other_whitespace_after_bearer(events: list[Any], separator: str) -> None:
    """``Bearer<TAB>X`` is a bearer credential to the app (DRF-style ``split()``): fixguard must act on it.

    HTAB is legal in a header value (RFC 9110 field-value), so a browser
    script or a proxy can send it.
    """
    header = {"Authorization": f"Bearer{separator}{ATTACKER_TOKEN}"}
    assert me(TestApp(bare()), ATTACKER_TOKEN).status_int == 401
    app, _ = wrapped(events)
    attacker, victim = TestApp(app), TestApp(app)
    answer = victim.post_json("/login", ALICE, headers=header, expect_errors=True)
    assert answer.status_int == 200
    assert ATTACKER_TOKEN not in bearer_app.TOKENS, "the planted token reached the app at login"
    assert user_of(me(victim, access_token(answer))) == "alice"

    replay = attacker.get("/me", headers=header, expect_errors=True)
    assert_not_alice(replay)


def _comma_tolerant(header: str) -> str | None:
    """A parser for "more than one Authorization header": split on commas, take the Bearer part."""
    for part in header.split(","):
        words = part.split()
        if len(words) == 2 and words[0] == "Bearer":
            return words[1]
    return None


@pytest.mark.parametrize(
    "template",
    ["Basic YTpi, Bearer {}", "Basic YTpi,Bearer {}", "Digest a=b, Bearer {}", "Token x, Bearer {}"],
)
def test_bearer_behind_another_scheme_does_not_reach_the_app(events: list[Any], template: str) -> None:
    """Two Authorization headers arrive joined by a comma; an app that looks for the Bearer part finds it."""
    bound = {"attacker-chosen": "alice"}  # as if the echo login had bound it

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        token = _comma_tolerant(environ.get("HTTP_AUTHORIZATION", ""))
        user = bound.get(token or "")
        start_response("200 OK" if user else "401 Unauthorized", [("Content-Type", "text/plain")])
        return [(user or "nobody").encode()]

    assert _comma_tolerant(template.format("attacker-chosen")) == "attacker-chosen"
    guard = FixGuard(
        api, secret_key=KEY, secure=False, token_fields=("access_token",), on_event=events.append
    )
    answer = TestApp(guard).get(
        "/me", headers={"Authorization": template.format("attacker-chosen")}, expect_errors=True
    )
    assert "alice" not in answer.text
