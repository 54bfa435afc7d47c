"""``cookie_max_age``: a persistent fixguard cookie for "remember me" sessions, never past its session.

By default fixguard's cookie is a browser-session cookie (no ``Max-Age``, no
``Expires``): closing the browser ends it, whatever the app's own cookie said.
With ``cookie_max_age`` every cookie fixguard sets carries ``Max-Age`` (and
``Expires``), capped by what is left of the session's ``absolute_timeout``.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from webtest import TestApp, TestResponse

from fixguard.cookies import CookieWriter

from .apps import VulnerableApp, guard
from .attack import fixation


def fixguard_set_cookie(res: TestResponse) -> str:
    (header,) = [h for h in res.headers.getall("Set-Cookie") if h.startswith("fixguard=")]
    return header


def attributes(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def test_by_default_the_cookie_ends_with_the_browser() -> None:
    res = TestApp(guard(VulnerableApp())).get("/")
    attrs = attributes(fixguard_set_cookie(res))
    assert "max-age" not in attrs and "expires" not in attrs


def test_a_persistent_cookie_at_creation_and_at_login() -> None:
    g = guard(VulnerableApp(), cookie_max_age=1209600, absolute_timeout=1209600, idle_timeout=1209600)
    client = TestApp(g)
    first = attributes(fixguard_set_cookie(client.get("/")))
    assert first["max-age"] == "1209600"
    expires = parsedate_to_datetime(first["expires"]).timestamp()
    assert abs(expires - (time.time() + 1209600)) < 5
    assert "httponly" in first and first["path"] == "/"
    login = attributes(fixguard_set_cookie(client.post("/login", {"password": "secret"})))
    assert login["max-age"] == "1209600"  # a login starts a new absolute lifetime
    assert client.get("/profile").text == "user=alice"


def test_the_attack_still_fails_with_a_persistent_cookie() -> None:
    g = guard(VulnerableApp(), cookie_max_age=3600, renew_grace=0.05)
    outcome = fixation(g, lambda victim: victim.post("/login", {"password": "secret"}))
    assert outcome.victim_after.text == "user=alice"
    assert outcome.replay.status_int == 401
    time.sleep(0.08)  # past the moment after the login, the refusal clears the cookie
    later = TestApp(g).get("/profile", headers={"Cookie": f"fixguard={outcome.planted}"}, expect_errors=True)
    assert later.status_int == 401
    cleared = attributes(fixguard_set_cookie(later))
    assert cleared["max-age"] == "0"  # the clearing cookie is not made persistent


def test_a_renewed_cookie_never_outlives_its_session() -> None:
    """A renewal keeps the session's creation time: the new cookie's Max-Age is what is left of it."""
    g = guard(VulnerableApp(), cookie_max_age=3600, absolute_timeout=3600, renew_after=1, renew_grace=1)
    client = TestApp(g)
    client.get("/")
    client.post("/login", {"password": "secret"})
    time.sleep(1.2)
    renewed = client.get("/profile")
    assert renewed.text == "user=alice"
    age = int(attributes(fixguard_set_cookie(renewed))["max-age"])
    assert 3590 <= age < 3600, age  # 3600 less the 1.2 s the session has lived


def test_the_writer_caps_at_the_session_end() -> None:
    writer = CookieWriter("fixguard", secure=True, samesite="Lax", max_age=600)
    now = time.time()
    assert "Max-Age=600" in writer.set("v")
    assert "Max-Age=600" in writer.set("v", now + 10_000)
    assert "Max-Age=99" in writer.set("v", now + 100) or "Max-Age=100" in writer.set("v", now + 100)
    assert "Max-Age=1" in writer.set("v", now - 5)  # an ended session: the shortest cookie, never none
    assert "Max-Age" not in CookieWriter("fixguard", True, "Lax").set("v", now + 100)
