"""The session-fixation attack in three moves, for tests that play it through WebTest.

:func:`plant` puts a cookie value in a victim's client exactly as an attacker
on a sibling subdomain would; :func:`fixation` plays the whole story against
one WSGI app: the attacker gets an ID, plants it, the victim logs in, the
attacker replays it.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Callable
from dataclasses import dataclass

from webtest import TestApp, TestResponse

from .apps import fg_cookie


def plant(client: TestApp, name: str, value: str) -> None:
    """Put ``name=value`` in the client's jar verbatim, as if the site had set it.

    ``TestApp.set_cookie`` would quote the value and file it apart from the
    site's own cookies; this files it for the host the client talks to, so a
    later ``Set-Cookie`` from the site replaces it, as in a browser.
    """
    client.cookiejar.set_cookie(
        http.cookiejar.Cookie(
            version=0, name=name, value=value, port=None, port_specified=False,
            domain="localhost.local",  # how http.cookiejar files the host "localhost"
            domain_specified=False, domain_initial_dot=False, path="/", path_specified=True,
            secure=False, expires=None, discard=True, comment=None, comment_url=None, rest={},
        )
    )  # fmt: skip
    assert client.cookies[name] == value


@dataclass
class Outcome:
    """What each side saw."""

    planted: str
    victim_login: TestResponse
    victim_after: TestResponse
    replay: TestResponse


def fixation(
    app: object,
    login: Callable[[TestApp], TestResponse],
    probe: str = "/profile",
    cookie_name: str = "fixguard",
    first: str = "/",
    attacker_environ: dict[str, str] | None = None,
    replay_path: str | None = None,
) -> Outcome:
    """Attacker gets fixguard's ID from ``first``, plants it, victim logs in, attacker replays it.

    The victim then reads ``probe``; the attacker replays on ``replay_path`` (``probe`` by default).
    """
    attacker = TestApp(app, extra_environ=attacker_environ or {})
    planted = fg_cookie(attacker.get(first, expect_errors=True), cookie_name)
    assert planted, "the app gave the attacker no fixguard ID to plant"
    victim = TestApp(app)
    plant(victim, cookie_name, planted)
    logged_in = login(victim)
    after = victim.get(probe, expect_errors=True)
    replayer = TestApp(app, extra_environ=attacker_environ or {})
    plant(replayer, cookie_name, planted)
    replay = replayer.get(replay_path or probe, expect_errors=True)
    return Outcome(planted, logged_in, after, replay)
