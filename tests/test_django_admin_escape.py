"""Django's admin behind fixguard whose login rule is wrong or missing, under real gunicorn.

Django's admin is safe bare: its login calls ``cycle_key()`` (or flushes the
session of another user), so a planted session cookie is worthless. The
attacker here logs into the admin as himself, plants his own fixguard ID in
the victim's browser, lets her log in through the real form (CSRF and all),
and replays: with no login rule, or the default rule left in place, he must
never see her admin.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from .servers import HOST, REPO, Gunicorns

pytestmark = pytest.mark.slow

USERS = {"alice": "alice-" + secrets.token_hex(8), "mallory": "mallory-" + secrets.token_hex(8)}
APP = "tests.django_project.wsgi:application"
TIMEOUT = 5


def _django(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def admins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir = tmp_path_factory.mktemp("django-escape")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FIXGUARD_", "DJANGO_", "CHECKTEST_"))},
        "FIXGUARD_SECRET_KEY": secrets.token_urlsafe(48),
        "FIXGUARD_SECURE": "0",
        "CHECKTEST_DJANGO_DB": str(workdir / "django.sqlite3"),
        "CHECKTEST_DJANGO_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "tests.django_project.settings",
    }
    _django(["migrate", "--noinput", "-v", "0"], env)
    for user, password in USERS.items():
        _django(
            ["createsuperuser", "--noinput", "--username", user, "--email", f"{user}@example.com"],
            {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        )
    variants = {"bare": None, "no-rule": "", "default-rule": "POST /login"}
    with Gunicorns(workdir) as started:
        for name, rules in variants.items():
            protect = {"CHECKTEST_DJANGO_PROTECT": "1", "CHECKTEST_DJANGO_LOGIN": rules or ""}
            extra = {} if rules is None else protect
            started.start(name, APP, {**env, **extra})
        deadline = time.monotonic() + 30
        for server in started:
            server.wait_ready(within=30, deadline=deadline, fail_on=("Traceback", "Worker failed to boot"))
        yield {server.name: server.base for server in started}


def login(client: requests.Session, base: str, user: str) -> None:
    form = client.get(f"{base}/admin/login/?next=/admin/", timeout=TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    done = client.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": user,
            "password": USERS[user],
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert done.status_code == 302 and done.headers["Location"] == "/admin/", done.text[:500]


def who(client: requests.Session, base: str) -> str | None:
    page = client.get(f"{base}/admin/", allow_redirects=False, timeout=TIMEOUT)
    if page.status_code != 200:
        return None
    found = re.search(r"Welcome,\s*<strong>([^<]+)</strong>", page.text)
    return found.group(1) if found else None


@pytest.mark.parametrize("variant", ["bare", "no-rule", "default-rule"])
def test_the_admin_stays_safe_when_its_login_escapes_the_rules(admins: dict[str, str], variant: str) -> None:
    base = admins[variant]
    cookie = "sessionid" if variant == "bare" else "fixguard"
    attacker = requests.Session()
    login(attacker, base, "mallory")
    assert who(attacker, base) == "mallory"
    planted = attacker.cookies.get(cookie)
    assert planted
    if variant != "bare":
        assert "sessionid" not in attacker.cookies  # the app's cookie stays in the vault

    victim = requests.Session()
    victim.cookies.set(cookie, planted, domain=HOST, path="/")
    login(victim, base, "alice")
    assert who(victim, base) == "alice"
    assert victim.cookies.get(cookie) != planted

    replay = requests.Session()
    replay.cookies.set(cookie, planted, domain=HOST, path="/")
    assert who(replay, base) is None  # neither alice nor, after her login, mallory
