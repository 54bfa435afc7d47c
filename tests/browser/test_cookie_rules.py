"""The browser's cookie rules, as fixguard depends on them, in a real Chromium.

* The cookie as the browser stores it: ``__Host-fixguard``, ``Secure``,
  ``HttpOnly``, ``Path=/``, no ``Domain``, ``SameSite=Lax``, no expiry — and
  never an app session cookie, at any step. Bare, the app's own cookie is
  stored, which shows the test would see one.
* Plain http: fixguard's ``Secure`` cookie is dropped by the browser on a
  host that is not loopback (``app.test``, mapped to 127.0.0.1 by the
  browser's resolver rules), so the login visibly fails and fixguard must say
  why (``insecure_transport``); on loopback, or with ``secure=False`` — the
  README's hint — it works, and so does the bare app.
* A cross-site form POST (from ``evil.test``): the bare example's session
  cookie, which has no ``SameSite`` attribute, rides along and the forged
  action succeeds; fixguard's ``SameSite=Lax`` cookie stays home, the action
  is refused as anonymous, no cookie changes and nothing is logged as an
  attack — and a link from that site still lands the user signed in.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import APP_NAME, HOST, OTHER_SITE, Person, Served, Servers

pytestmark = [pytest.mark.slow, pytest.mark.browser]

APP_COOKIE = {"signed": "sid", "basic": "session"}
GUARD = "__Host-fixguard"
ATTACK_EVENTS = {"fixation_blocked", "race_blocked", "frozen_request", "token_blocked", "store_unavailable"}


def _names(cookies: list[dict[str, Any]]) -> list[str]:
    return sorted(c["name"] for c in cookies)


@pytest.mark.parametrize("mode", ["bare", "protected"])
@pytest.mark.parametrize("example", ["signed", "basic"])
def test_the_cookie_as_the_browser_stores_it(
    servers: Servers, victim: Person, example: str, mode: str
) -> None:
    served = servers[f"{example}-{mode}"]
    start = served.mark()
    stored: dict[str, list[dict[str, Any]]] = {}
    victim.open(served.url("/"))
    stored["visit"] = victim.cookies()
    assert victim.sign_in(served) == (200, "Logged in as alice")
    stored["login"] = victim.cookies()
    assert victim.open(served.url("/profile")) == (200, "Profile of alice")
    stored["profile"] = victim.cookies()
    assert victim.tab.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)") == 200
    stored["logout"] = victim.cookies()

    app_cookie = APP_COOKIE[example]
    if mode == "bare":
        assert app_cookie in _names(stored["visit"]), "the bare app's own cookie must be visible to this test"
        return
    for step, cookies in stored.items():
        assert set(_names(cookies)) <= {GUARD}, f"after {step}: {cookies}"
    for step in ("visit", "login", "profile"):
        assert _names(stored[step]) == [GUARD], f"after {step}: {stored[step]}"
        (cookie,) = stored[step]
        assert cookie["secure"] is True and cookie["httpOnly"] is True, cookie
        assert cookie["path"] == "/" and cookie["domain"] == HOST, cookie  # host-only: no Domain attribute
        assert cookie["sameSite"] == "Lax" and cookie["session"] is True, cookie  # no Max-Age, no Expires
    assert stored["login"][0]["value"] != stored["visit"][0]["value"]
    sent = [r["sent"] for r in served.records(start)]
    assert not [s for s in sent if app_cookie in s], (
        "the browser sent an app session cookie it should never hold"
    )


def _sign_in_over_http(victim: Person, served: Served, host: str) -> dict[str, Any]:
    start = served.mark()
    login = victim.sign_in(served, host)
    return {
        "login": login,
        "profile": victim.open(served.url("/profile", host)),
        "cookies": _names(victim.cookies()),
        "events": {e["kind"]: e for e in served.events(start)},
    }


@pytest.mark.parametrize(
    ("server", "host", "cookie"),
    [
        ("http-bare", APP_NAME, "sid"),  # bare: the app's own cookie has no Secure flag
        ("http-secure-false", HOST, "fixguard"),  # plain http on 127.0.0.1 with secure=False
        ("http-secure-false", APP_NAME, "fixguard"),  # the README's hint, on a real name
        ("http-secure-true", HOST, GUARD),  # the browser keeps Secure cookies from loopback over http
    ],
)
def test_plain_http_that_works(servers: Servers, victim: Person, server: str, host: str, cookie: str) -> None:
    seen = _sign_in_over_http(victim, servers[server], host)
    assert seen["login"] == (200, "Logged in as alice")
    assert seen["profile"] == (200, "Profile of alice")
    assert seen["cookies"] == [cookie]
    assert "insecure_transport" not in seen["events"]


def test_secure_cookie_over_plain_http_on_a_real_name_fails_visibly_and_is_explained(
    servers: Servers, victim: Person
) -> None:
    served = servers["http-secure-true"]
    seen = _sign_in_over_http(victim, served, APP_NAME)
    assert seen["login"] == (200, "Logged in as alice")  # what the app says...
    assert seen["profile"] == (401, "Not logged in")  # ...and what the user then sees
    assert seen["cookies"] == [], "the browser kept a Secure cookie set over plain http"
    # Logged once per host and process: no other test uses this server under a name that is not loopback.
    warning = seen["events"].get("insecure_transport")
    assert warning is not None, seen["events"]
    assert warning["host"] == APP_NAME and "secure=False" in warning["hint"], warning  # the fix tested above
    assert "insecure_transport" in served.log_text(), "the warning did not reach the server's log"


@pytest.mark.parametrize("mode", ["bare", "protected"])
def test_cross_site_form_post(servers: Servers, victim: Person, other_site: Any, mode: str) -> None:
    served = servers[f"basic-{mode}"]
    assert victim.sign_in(served) == (200, "Logged in as alice")
    held = {c["name"]: c["value"] for c in victim.cookies()}
    start = served.mark()

    assert victim.open(other_site.page(served))[0] == 200
    posted = (victim.tab.click("#post"), victim.tab.text())
    (note,) = served.records(start, method="POST", path="/note")
    assert note["site"] == "cross-site" and note["origin"].startswith(f"http://{OTHER_SITE}:"), note
    if mode == "bare":
        assert posted == (200, "Note saved for alice"), (
            "the bare app's cookie must ride along, or this proves nothing"
        )
        assert "session" in note["sent"]
    else:
        assert posted == (401, "Not logged in")
        assert note["sent"] == {}, "a cookie of the session was sent with a cross-site POST"
        assert note["cookies"] == {}, "the answer to a cross-site POST touched the cookies"
        assert {c["name"]: c["value"] for c in victim.cookies()} == held
        assert not ATTACK_EVENTS & {e["kind"] for e in served.events(start)}

    # Nothing broke: a link from the other site (a cross-site top-level GET) lands her signed in.
    assert victim.open(other_site.page(served))[0] == 200
    assert (victim.tab.click("#link"), victim.tab.text()) == (200, "Profile of alice")
    followed = served.records(start, method="GET", path="/profile")[-1]
    assert (
        followed["site"] == "cross-site" and (GUARD if mode == "protected" else "session") in followed["sent"]
    )
