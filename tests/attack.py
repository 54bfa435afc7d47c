"""The session-fixation attack in three moves, for tests that play it through WebTest.

:func:`plant` puts a cookie value in a victim's client exactly as an attacker
on a sibling subdomain would; :func:`fixation` plays the whole story against
one WSGI app: the attacker gets an ID, plants it, the victim logs in, the
attacker replays it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from webtest import TestApp, TestResponse

from .apps import fg_cookie, plant

__all__ = ["Outcome", "fixation", "plant"]


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
