"""Shared caches: a response that sets or clears fixguard's cookie is ``private``.

A shared cache that stored such a response would replay one user's session
cookie to everyone who asks for the same URL; ``no-cache="Set-Cookie"``
alone is a qualified directive that several caches ignore. These tests
drive real requests through FixGuard and read the Cache-Control that leaves.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from webtest import TestApp

from fixguard.caching import directives, keep_out_of_shared_caches

from .apps import VulnerableApp, fg_cookie, guard


def app_with(*cache_control: str, sets_cookie: bool = True) -> Any:
    """An app that answers with the given Cache-Control fields (and its session cookie)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", "text/plain")]
        headers += [("Cache-Control", value) for value in cache_control]
        if sets_cookie:
            headers.append(("Set-Cookie", "session=a; Path=/"))
        start_response("200 OK", headers)
        return [b"page"]

    return app


def cache_control(res: Any) -> list[str]:
    return [d.lower() for field in res.headers.getall("Cache-Control") for d in directives(field)]


def test_public_response_that_sets_the_cookie_becomes_private() -> None:
    res = TestApp(guard(app_with("public, max-age=60"))).get("/")
    assert fg_cookie(res) is not None
    assert res.headers.getall("Cache-Control") == ['private, max-age=60, no-cache="Set-Cookie"']


def test_shared_cache_directives_go_the_others_stay() -> None:
    app = app_with("public, s-maxage=600, max-age=60, must-revalidate, stale-if-error=30")
    res = TestApp(guard(app)).get("/")
    assert fg_cookie(res) is not None
    assert cache_control(res) == [
        "private", "max-age=60", "must-revalidate", "stale-if-error=30", 'no-cache="set-cookie"'
    ]


def test_several_cache_control_fields_are_merged_and_none_stays_public() -> None:
    """A recipient reads several fields as one list: a ``public`` in the second must go too."""
    res = TestApp(guard(app_with("max-age=60", "Public", "S-MaxAge=300"))).get("/")
    assert len(res.headers.getall("Cache-Control")) == 1
    assert cache_control(res) == ["private", "max-age=60", 'no-cache="set-cookie"']


def test_qualified_private_becomes_plain_private_and_quoted_commas_survive() -> None:
    res = TestApp(guard(app_with('private="Set-Cookie", no-cache="Set-Cookie, X-Trace", max-age=5'))).get("/")
    assert res.headers.getall("Cache-Control") == ['private, no-cache="Set-Cookie, X-Trace", max-age=5']


def test_response_without_cache_control_gets_private() -> None:
    res = TestApp(guard(app_with())).get("/")
    assert fg_cookie(res) is not None
    assert res.headers.getall("Cache-Control") == ['private, no-cache="Set-Cookie"']


def test_clearing_the_cookie_is_private_too() -> None:
    """A bad signature clears fixguard's cookie: that Set-Cookie must not be cached for others."""
    t = TestApp(guard(app_with("public, max-age=60", sets_cookie=False)))
    t.set_cookie("fixguard", "forged.value")
    res = t.get("/")
    assert fg_cookie(res) == ""  # cleared
    assert cache_control(res) == ["private", "max-age=60", 'no-cache="set-cookie"']


def test_login_rotation_and_logout_responses_are_private() -> None:
    vuln = VulnerableApp()

    def public(environ: dict[str, Any], start_response: Any) -> Any:
        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("Cache-Control", "public, max-age=300")], exc_info)

        return vuln(environ, respond)

    t = TestApp(guard(public))
    t.get("/")
    login = t.post("/login", {"password": "secret"})
    assert fg_cookie(login)
    assert cache_control(login)[0] == "private" and "public" not in cache_control(login)
    logout = t.post("/logout")
    assert fg_cookie(logout) is not None
    assert cache_control(logout)[0] == "private" and "public" not in cache_control(logout)


def test_refusal_of_a_retired_id_is_private_and_not_stored() -> None:
    g = guard(VulnerableApp(), renew_grace=0.1)
    t = TestApp(g)
    t.get("/")
    planted = t.cookies["fixguard"]
    t.post("/login", {"password": "secret"})
    attacker = TestApp(g)
    attacker.set_cookie("fixguard", planted)
    quiet = attacker.get("/profile", expect_errors=True)  # moments after the login: no cookie at all
    assert quiet.status_int == 401 and fg_cookie(quiet) is None
    assert cache_control(quiet) == ["no-store"]
    time.sleep(0.15)
    refused = attacker.get("/profile", expect_errors=True)  # later: the refusal clears the cookie
    assert refused.status_int == 401 and fg_cookie(refused) == ""
    assert cache_control(refused) == ["private", "no-store", 'no-cache="set-cookie"']


def test_a_response_that_leaves_fixguards_cookie_alone_keeps_its_public() -> None:
    """Only responses that carry fixguard's cookie change: static pages stay cacheable."""
    res = TestApp(guard(app_with("public, max-age=60", sets_cookie=False))).get("/")
    assert fg_cookie(res) is None
    assert res.headers.getall("Cache-Control") == ["public, max-age=60"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("public,,max-age=1", ["public", "max-age=1"]),
        ('no-cache="a,b", public', ['no-cache="a,b"', "public"]),
        ('x="a\\",b", y', ['x="a\\",b"', "y"]),
        ('no-cache="unterminated, public', ['no-cache="unterminated, public']),
    ],
)
def test_directives_split_only_outside_quotes(value: str, expected: list[str]) -> None:
    assert directives(value) == expected


def test_keep_out_of_shared_caches_edits_in_place_and_keeps_other_headers() -> None:
    headers = [("Cache-Control", "public"), ("X-A", "1"), ("cache-control", "max-age=9"), ("X-B", "2")]
    assert keep_out_of_shared_caches(headers) is headers
    merged = 'private, max-age=9, no-cache="Set-Cookie"'
    assert headers == [("Cache-Control", merged), ("X-A", "1"), ("X-B", "2")]
