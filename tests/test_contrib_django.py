"""``fixguard.contrib.django``: ``get_wsgi_application()``, ``settings.FIXGUARD`` and the deploy check.

Django can be configured once per process and the framework matrix does so in
this one, so the project in ``tests/django_fixguard`` runs in subprocesses:
the attack is played by ``python -m tests.django_fixguard.play`` (WebTest
against the real WSGI application, Django's login form, its admin, a view with
the classic bug), and the system check by ``python -m django check --deploy``
exactly as a deployment runs it. What the check decides is also tested here
directly, through :func:`fixguard.contrib.django.checks.findings`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixguard.contrib.django.checks import findings, local_path

REPO = Path(__file__).resolve().parents[1]
KEY = secrets.token_urlsafe(48)
RULES = ["POST /weak-login/", "POST /accounts/login/ 302", "POST /admin/login/ 302"]
PROTECTED = {"secret_key": KEY, "secure": False, "login": RULES, "logout": ["POST /accounts/logout/"]}

pytestmark = pytest.mark.slow


def run(
    args: list[str], tmp_path: Path, fixguard: dict[str, Any] | None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FGTEST_", "DJANGO_"))}
    environ.update(
        DJANGO_SETTINGS_MODULE="tests.django_fixguard.settings", FGTEST_DB=str(tmp_path / "db.sqlite3")
    )
    if fixguard is not None:
        environ["FGTEST_FIXGUARD"] = json.dumps(fixguard)
    environ.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )


# -- get_wsgi_application: the attack played through it --------------------------------------------


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = run(["-m", "tests.django_fixguard.play"], tmp_path_factory.mktemp("django"), PROTECTED)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_the_bare_app_is_vulnerable(played: dict[str, Any]) -> None:
    assert played["bare_replay"] == "user=alice"  # the attacker rides the victim's login


@pytest.mark.parametrize("login", ["weak", "login_view", "admin"])
def test_get_wsgi_application_blocks_the_attack(played: dict[str, Any], login: str) -> None:
    scenario = played[login]
    assert scenario["victim_after"][0] == 200, scenario  # the victim is logged in
    assert scenario["replay"] == [401, "This session has ended. Please sign in again.\n"], scenario
    assert scenario["app_cookie_leaked"] is False


def test_get_asgi_application_blocks_the_attack(played: dict[str, Any]) -> None:
    scenario = played["asgi"]
    assert scenario["middleware"] == "FixGuardMiddleware"
    assert scenario["victim"] == [200, "user=alice"] and scenario["rotated"]
    assert scenario["replay"][0] == 401 and "alice" not in scenario["replay"][1]
    assert scenario["app_cookie_leaked"] is False


def test_app_cookies_default_to_session_cookie_name(played: dict[str, Any]) -> None:
    assert played["app_cookies"] == ["appsession"]


def test_signal_in_django_unit_tests(played: dict[str, Any]) -> None:
    assert played["signal_without_helper"].startswith("fixguard.signal() was called for a request")
    assert played["signal_with_helper"] == ["login"]


def test_settings_fixguard_is_checked_at_start_up(tmp_path: Path) -> None:
    code = "from fixguard.contrib.django import get_wsgi_application; get_wsgi_application()"
    proc = run(["-c", code], tmp_path, {**PROTECTED, "secur": True})
    assert "secur (settings.FIXGUARD) is not a fixguard setting. Did you mean secure?" in proc.stderr
    proc = run(["-c", code], tmp_path, {"secure": False})
    assert 'settings.FIXGUARD["secret_key"] is required' in proc.stderr
    proc = run(["-c", code], tmp_path, None)
    assert "settings.FIXGUARD must be a dict of fixguard settings" in proc.stderr


# -- manage.py check --deploy --------------------------------------------------------------------------


def check(tmp_path: Path, fixguard: dict[str, Any] | None, deploy: bool = True, **env: str) -> str:
    args = ["-m", "django", "check", *(["--deploy"] if deploy else [])]
    proc = run(args, tmp_path, fixguard, **env)
    return proc.stdout + proc.stderr


def test_check_deploy_warns_when_no_rule_covers_the_login_pages(tmp_path: Path) -> None:
    # detection off, and FixGuard's default rule, POST /login, covers neither page
    out = check(tmp_path, {"secret_key": KEY, "detect_logins": False})
    assert "fixguard.W001" in out and "(/accounts/login/)" in out
    assert "fixguard.W002" in out and "(/admin/login/)" in out
    assert 'Add "POST /accounts/login/ 302" to settings.FIXGUARD["login"]' in out


def test_check_deploy_is_quiet_when_rules_cover_them(tmp_path: Path) -> None:
    out = check(tmp_path, PROTECTED)
    assert "fixguard." not in out, out


def test_check_deploy_reads_a_named_login_url(tmp_path: Path) -> None:
    rules_only = {"secret_key": KEY, "login": ["POST /admin/login/ 302"], "detect_logins": False}
    out = check(tmp_path, rules_only, FGTEST_LOGIN_URL="login")
    assert "fixguard.W001" in out and "(/accounts/login/)" in out and "fixguard.W002" not in out


def test_check_deploy_warns_when_fixguard_is_weaker_than_the_session_cookie(tmp_path: Path) -> None:
    out = check(tmp_path, PROTECTED, FGTEST_SESSION_COOKIE_SECURE="1")
    assert "fixguard.W003" in out and "SESSION_COOKIE_SECURE is True" in out
    assert "fixguard.W003" not in check(
        tmp_path, {**PROTECTED, "secure": True}, FGTEST_SESSION_COOKIE_SECURE="1"
    )


def test_check_deploy_reports_a_bad_or_missing_setting(tmp_path: Path) -> None:
    assert "fixguard.E001" in check(tmp_path, None)
    out = check(tmp_path, {**PROTECTED, "login": ["LOGIN"]})
    assert "fixguard.E001" in out and "login rule" in out


def test_the_checks_are_deploy_checks(tmp_path: Path) -> None:
    assert "fixguard." not in check(tmp_path, {"secret_key": KEY}, deploy=False)


# -- the decisions, without Django ------------------------------------------------------------------------

PAGES = {"LOGIN_URL": "/accounts/login/", "the admin login": "/admin/login/"}


def ids(found: list[Any]) -> list[str]:
    return [f.id for f in found]


def test_credential_detection_covers_every_login_page() -> None:
    off = {"secret_key": KEY, "detect_logins": False}
    assert ids(findings(off, PAGES, False)) == ["fixguard.W001", "fixguard.W002"]
    # detect_logins is read from settings.FIXGUARD when present, FixGuard's own default (on) otherwise
    for covered in ({"secret_key": KEY, "detect_logins": True}, {"secret_key": KEY}):
        found = findings(covered, PAGES, False)
        assert "fixguard.W001" not in ids(found) and "fixguard.W002" not in ids(found)


def test_rules_cover_by_path_and_any_rotating_signal() -> None:
    covered = {"secret_key": KEY, "login": "POST /accounts/login/", "elevate": ["* /admin/login/ 3xx"]}
    assert ids(findings(covered, PAGES, False)) == []
    logout_only = {"secret_key": KEY, "login": [], "logout": ["POST /accounts/login/"]}
    logout_only["detect_logins"] = False
    assert ids(findings(logout_only, PAGES, False)) == ["fixguard.W001", "fixguard.W002"]
    assert ids(findings({"secret_key": KEY, "login": []}, {"LOGIN_URL": None}, False)) == []


def test_secure_off_only_matters_when_the_session_cookie_is_secure() -> None:
    assert "fixguard.W003" in ids(findings({**PROTECTED, "secure": False}, PAGES, True))
    assert "fixguard.W003" not in ids(findings({**PROTECTED, "secure": False}, PAGES, False))
    assert "fixguard.W003" not in ids(findings({"secret_key": KEY, "login": RULES}, PAGES, True))


def test_only_local_login_pages_are_checked() -> None:
    assert local_path("/accounts/login/?next=/") == "/accounts/login/"
    assert local_path("https://sso.example.com/login") is None
    assert local_path("//sso.example.com/login") is None
    assert local_path(None) is None
