"""Play the attack through ``fixguard.contrib.django.get_wsgi_application()``; print what happened as JSON.

Run by ``tests/test_contrib_django.py`` in a fresh process (``python -m
tests.django_fixguard.play``) with ``DJANGO_SETTINGS_MODULE`` and the
``FGTEST_*`` variables set. Every scenario plays attacker and victim with
WebTest against the real WSGI application, bare (Django's own
``get_wsgi_application``) and protected (fixguard's).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from webtest import TestApp

from tests.attack import fixation, plant


def _django_login(path: str) -> Any:
    def login(victim: TestApp) -> Any:
        form = victim.get(path).form  # Django's real form: CSRF token and cookie
        form["username"], form["password"] = "alice", "wonderland"
        return form.submit()

    return login


def _weak_login(victim: TestApp) -> Any:
    return victim.post("/weak-login/", {"user": "alice", "password": "secret"})


def main() -> int:
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application as bare_application

    from fixguard.contrib.django import get_wsgi_application

    protected = get_wsgi_application()
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.create_superuser("alice", password="wonderland")
    report: dict[str, Any] = {"app_cookies": list(protected.settings.app_cookies)}

    # the classic bug, bare: the planted app session cookie becomes the victim's session
    bare = bare_application()
    planted = TestApp(bare).get("/").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    victim = TestApp(bare)
    plant(victim, "appsession", planted)
    _weak_login(victim)
    attacker = TestApp(bare)
    plant(attacker, "appsession", planted)
    report["bare_replay"] = attacker.get("/whoami/", expect_errors=True).text

    for name, login, probe in (
        ("weak", _weak_login, "/whoami/"),
        ("login_view", _django_login("/accounts/login/"), "/profile/"),
        ("admin", _django_login("/admin/login/"), "/admin/"),
    ):
        outcome = fixation(protected, login, probe=probe)
        report[name] = {
            "victim_after": [outcome.victim_after.status_int, outcome.victim_after.text[:60]],
            "replay": [outcome.replay.status_int, outcome.replay.text[:60]],
            "app_cookie_leaked": any(
                h.startswith("appsession=")
                for r in (outcome.victim_login, outcome.victim_after, outcome.replay)
                for h in r.headers.getall("Set-Cookie")
            ),
        }

    # fixguard.signal() in Django's own test client: loud without the helper, recorded with it
    import fixguard.contrib.testing

    try:
        Client().get("/signal-login/")
        report["signal_without_helper"] = "no error"
    except RuntimeError as exc:
        report["signal_without_helper"] = str(exc)[:60]
    response = Client(**fixguard.contrib.testing.environ()).get("/signal-login/")
    report["signal_with_helper"] = fixguard.contrib.testing.signals(response.wsgi_request.environ)
    report["asgi"] = _play_asgi()
    json.dump(report, sys.stdout)
    return 0


def _play_asgi() -> dict[str, Any]:
    """The weak login's attack through ``get_asgi_application()`` (httpx's ASGI transport, in-process)."""
    import asyncio

    from fixguard.contrib.django import get_asgi_application
    from tests.asgi_support import Browser

    protected = get_asgi_application()

    async def attack() -> dict[str, Any]:
        attacker, victim = Browser(protected), Browser(protected)
        await attacker.get("/")
        planted = attacker.cookies["fixguard"]
        victim.cookies["fixguard"] = planted
        await victim.post("/weak-login/", data={"user": "alice", "password": "secret"})
        mine = await victim.get("/whoami/")
        replay = await attacker.get("/whoami/")
        return {
            "victim": [mine.status_code, mine.text[:60]],
            "replay": [replay.status_code, replay.text[:60]],
            "rotated": victim.cookies.get("fixguard") != planted,
            "app_cookie_leaked": "appsession" in attacker.cookies or "appsession" in victim.cookies,
            "middleware": type(protected).__name__,
        }

    return asyncio.run(attack())


if __name__ == "__main__":
    sys.exit(main())
