"""The fixation attack in a real browser: two Chromium profiles, the examples over https.

The attacker visits the app in his browser, reads his session cookie through
DevTools and stores it in the victim's browser; the victim signs in through
the example's own page (typing into the form, or letting the browser answer
the Basic Auth challenge with her credentials); the attacker reloads the
profile page. Bare, the attacker is now alice — which proves the test can see
the attack work; protected, he gets "This session has ended" and alice stays
signed in.
"""

from __future__ import annotations

import secrets

import pytest

from .app import fingerprint
from .harness import Person, Servers, plant, verdict

pytestmark = [pytest.mark.slow, pytest.mark.browser]

APP_COOKIE = {"signed": "sid", "basic": "session"}
GUARD = "__Host-fixguard"


@pytest.mark.parametrize("mode", ["bare", "protected"])
@pytest.mark.parametrize("example", ["signed", "basic"])
def test_attack_with_two_browser_profiles(
    servers: Servers, attacker: Person, victim: Person, example: str, mode: str
) -> None:
    served = servers[f"{example}-{mode}"]
    start = served.mark()
    assert attacker.open(served.url("/"))[0] == 200
    assert attacker.open(served.url("/profile")) == (401, "Not logged in")

    planted = plant(attacker, victim, served)
    assert [c["name"] for c in planted] == [GUARD if mode == "protected" else APP_COOKIE[example]]

    assert victim.sign_in(served) == (200, "Logged in as alice")
    logins = served.records(start, method="POST", path="/login", status=200)
    assert [r["sent"] for r in logins] == [{planted[0]["name"]: fingerprint(planted[0]["value"])}], (
        "the victim's login did not carry the planted cookie"
    )

    replay = attacker.reload()
    if mode == "bare":
        assert replay == (200, "Profile of alice"), "the bare app must fall, or this test proves nothing"
    else:
        assert verdict(replay) == "ended", replay
        assert "fixation_blocked" in [e["kind"] for e in served.events(start)]
        held = {c["name"]: c["value"] for c in victim.cookies()}
        assert set(held) == {GUARD} and held[GUARD] != planted[0]["value"]
    assert victim.open(served.url("/profile")) == (200, "Profile of alice")


@pytest.mark.parametrize("mode", ["bare", "protected"])
def test_basic_auth_with_the_browsers_own_credentials(
    servers: Servers, attacker: Person, victim: Person, mode: str
) -> None:
    """No login rule at all (``login=()``): only the credentials the browser sends can mark the login.

    After one rotation, a page whose ten images and ``fetch`` go out in
    parallel, each with the browser's remembered Basic credentials, leaves
    alice signed in and causes no further rotation.
    """
    served = servers["basic-bare" if mode == "bare" else "basic-detect"]
    start = served.mark()
    assert attacker.open(served.url("/"))[0] == 200
    planted = plant(attacker, victim, served)
    assert victim.sign_in(served) == (200, "Logged in as alice")

    run = secrets.randbelow(10**9)
    assert victim.open(served.url(f"/gallery?images=10&ms=300&run={run}"))[0] == 200
    victim.tab.wait_for("window.imagesDone === 10 && window.profileText !== null")
    assert victim.tab.evaluate("window.profileText") == "Profile of alice"
    page_load = [r for r in served.records(start) if f"run={run}" in r["query"]]
    assert len(page_load) == 12, page_load  # the page, its ten images and its fetch
    assert {r["authorization"] for r in page_load} == {"Basic"}, "the browser did not send its credentials"
    assert victim.open(served.url("/profile")) == (200, "Profile of alice")

    replay = attacker.open(served.url("/profile"))
    if mode == "bare":
        assert replay == (200, "Profile of alice"), "the bare app must fall, or this test proves nothing"
        return
    assert verdict(replay) == "ended", replay
    rotations = [e for e in served.events(start) if e["kind"] == "rotation"]
    assert [e.get("via") for e in rotations] == ["credentials"], rotations
    assert victim.cookies()[0]["value"] != planted[0]["value"]
