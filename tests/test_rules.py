"""Rules match what the router serves: slashes, trailing slash, latin-1 paths, HEAD, Location.

A rule that does not match the request the router runs leaves a login
unsignalled. These tests drive the rule syntax through FixGuard itself (a
rotation is the proof that a rule matched) and through the configuration
sources, whose errors must name the setting or the variable.
"""

from __future__ import annotations

from typing import Any

import pytest
from webtest import TestApp

from fixguard import ConfigError, Event, FixGuard
from fixguard.config import read_env
from fixguard.signals import RuleSet, normalize_path, parse_rule

from .apps import SECRET, fg_cookie, guard


def login_app(location: str | None = None, status: str = "200 OK") -> Any:
    """Answers every request with ``status`` (and ``Location``), setting the app's session cookie."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", "text/plain"), ("Set-Cookie", "session=v; Path=/")]
        if location is not None:
            headers.append(("Location", location))
        start_response(status, headers)
        return [b"ok"]

    return app


def rotations(app: Any, method: str, path: str, **rules: Any) -> list[Event]:
    """Run one request with a pre-login session and return the rotation events it raised."""
    events: list[Event] = []
    guarded = guard(app, on_event=events.append, **rules)
    client = TestApp(guarded)
    client.get("/start")  # a session exists before the login
    events.clear()
    client.request(path, method=method, expect_errors=True)
    return [e for e in events if e.kind == "rotation"]


@pytest.mark.parametrize("path", ["/login", "/login/", "//login", "///login//"])
def test_runs_of_slashes_and_a_trailing_slash_match(path: str) -> None:
    assert rotations(login_app(), "POST", path, login=("POST /login",))


@pytest.mark.parametrize("rule", ["POST /admin/login/", "POST /admin/login", "POST //admin//login//"])
@pytest.mark.parametrize("path", ["/admin/login", "/admin/login/"])
def test_a_trailing_slash_in_the_rule_is_optional(rule: str, path: str) -> None:
    assert rotations(login_app(), "POST", path, login=(rule,))


def test_a_non_ascii_rule_matches_the_wsgi_latin1_path() -> None:
    # what a WSGI server puts in PATH_INFO for /connexion-é: its UTF-8 bytes read as latin-1
    wsgi_path = "/connexion-é".encode().decode("latin-1")
    assert wsgi_path == "/connexion-Ã©"
    rules = RuleSet([parse_rule("login", "POST /connexion-é")])
    assert rules.match("POST", wsgi_path)
    assert RuleSet([parse_rule("login", "POST /connexion-%C3%A9")]).match("POST", wsgi_path)
    # and through the middleware, with the URL a browser sends
    assert rotations(login_app(), "POST", "/connexion-%C3%A9", login=("POST /connexion-é",))


def test_head_matches_a_get_rule() -> None:
    assert rotations(login_app(), "HEAD", "/sso/callback", login=("GET /sso/callback",))
    assert not rotations(login_app(), "HEAD", "/sso/callback", login=("POST /sso/callback",))


def test_methods_no_rule_names_skip_matching_but_any_method_and_head_still_match() -> None:
    """RuleSet.match turns away a method no rule names before normalising the path: never a rule's own."""
    rules = RuleSet([parse_rule("login", "POST /login"), parse_rule("elevate", "PUT /mfa/*")])
    assert not rules.match("GET", "/login") and not rules.match("HEAD", "/login")
    assert [r.signal for r in rules.match("PUT", "/mfa//totp/")] == ["elevate"]
    star = RuleSet([parse_rule("login", "* /sso")])
    assert all(star.match(m, "/sso/") for m in ("GET", "HEAD", "DELETE", "OPTIONS"))
    get_glob = RuleSet([parse_rule("login", "GET /sso/*")])
    assert get_glob.match("HEAD", "/sso/cb") and not get_glob.match("POST", "/sso/cb")


def test_globs_match_normalised_paths() -> None:
    assert rotations(login_app(), "POST", "/auth//github/callback/", login=("POST /auth/*/callback",))
    assert rotations(login_app(), "POST", "/a/b/c/login", login=("POST /**/login",))
    assert not rotations(login_app(), "POST", "/auth/x/y/callback", login=("POST /auth/*/callback",))


def test_normalize_path() -> None:
    assert normalize_path("/") == "/"
    assert normalize_path("//") == "/"
    assert normalize_path("") == "/"
    assert normalize_path("/a//b///") == "/a/b"


# -- redirect targets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "rotates"),
    [
        ("/dashboard", True),
        ("/dashboard/home", False),  # * stays inside one segment
        ("/dashboardx", True),
        ("http://example.test/dashboard", True),  # absolute Location
        ("dashboard", True),  # relative to /login: /dashboard
        ("/login?error=1", False),
        (None, False),
    ],
)
def test_a_location_condition(location: str | None, rotates: bool) -> None:
    app = login_app(location, "302 Found")
    assert bool(rotations(app, "POST", "/login", login=("POST /login 302 -> /dashboard*",))) is rotates


@pytest.mark.parametrize(
    ("location", "rotates"),
    [
        ("/home", True),
        ("/login", False),
        ("/login/?error=1", False),
        ("http://example.test/login", False),
        ("/login-help", False),
        (None, True),  # not sent back to the form: counts (rotating is the safe side)
    ],
)
def test_a_negated_location_condition(location: str | None, rotates: bool) -> None:
    app = login_app(location, "302 Found")
    assert bool(rotations(app, "POST", "/login", login=("POST /login 302 -> !/login*",))) is rotates


def test_the_status_still_has_to_match_with_a_location() -> None:
    app = login_app("/home", "303 See Other")
    assert not rotations(app, "POST", "/login", login=("POST /login 302 -> !/login*",))
    assert rotations(app, "POST", "/login", login=("POST /login 3xx -> !/login*",))


# -- what a rule cannot mean -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("POST /admin/login/?next=/admin/ 302", "query"),
        ("POST /log?n", "query"),
        ("POST /[z-a]", "glob"),
        ("FROB /login", "not an HTTP method"),
        ("POST login", "start with '/'"),
        ("POST /login 302 ->", "one path glob"),
        ("POST /login 302 -> /a /b", "one path glob"),
        ("POST /login 302 -> /a?b", "query"),
        ("POST", "METHOD /path"),
    ],
)
def test_a_rule_that_cannot_mean_anything_is_refused(rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FixGuard(login_app(), secret_key=SECRET, secure=False, login=(rule,))


def test_rule_errors_from_the_environment_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^FIXGUARD_LOGIN: .*query"):
        read_env({"FIXGUARD_LOGIN": "POST /login?next=/"})
    with pytest.raises(ConfigError, match=r"^FIXGUARD_LOGOUT: .*glob"):
        read_env({"FIXGUARD_LOGOUT": "POST /[z-a]"})
    with pytest.raises(ConfigError, match=r"^FIXGUARD_TOKEN_PASSTHROUGH: .*query"):
        read_env({"FIXGUARD_TOKEN_PASSTHROUGH": "GET /public?x"})


def test_passthrough_rules_follow_the_same_syntax() -> None:
    with pytest.raises(ConfigError, match="query"):
        guard(login_app(), token_fields=("t",), token_passthrough=("GET /p?",))


def test_two_rules_for_one_request_and_different_signals_are_refused() -> None:
    with pytest.raises(ConfigError, match="both"):
        FixGuard(login_app(), secret_key=SECRET, secure=False, login=("POST /auth",), logout=("POST /auth/",))
    with pytest.raises(ConfigError, match="both"):
        guard(login_app(), login=("POST /a//b 302",), elevate=("POST /a/b",))
    # the same signal twice is fine
    FixGuard(login_app(), secret_key=SECRET, secure=False, login=("POST /auth", "POST /auth/ 302"))


def test_the_old_glob_question_mark_is_gone_from_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "`?` one character" not in readme


def test_a_rule_cookie_round_trip_sets_the_new_cookie() -> None:
    client = TestApp(guard(login_app(), login=("POST /login",)))
    before = fg_cookie(client.get("/start"))
    after = fg_cookie(client.post("//login/"))
    assert before and after and before != after
