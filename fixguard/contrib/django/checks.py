"""``manage.py check --deploy`` for fixguard: the login pages are covered, the cookie is not weaker.

* ``fixguard.W001`` — nothing marks a POST to ``LOGIN_URL`` as a login: no
  login or elevate rule matches it and credential detection is off, so a
  login there rotates nothing and the pre-login ID stays usable.
* ``fixguard.W002`` — the same for the admin's login page (``admin:login``).
* ``fixguard.W003`` — fixguard's ``secure`` is off while ``SESSION_COOKIE_SECURE``
  is on: fixguard's cookie now carries the session, over plain http too.
* ``fixguard.E001`` — ``settings.FIXGUARD`` is missing or cannot be read.

The decisions are in :func:`findings`, which needs no Django; the check itself
only gathers the paths and settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...config import ConfigError
from ...signals import ROTATING, RuleError, RuleSet, parse_rule
from .._settings import default, read_settings


@dataclass(frozen=True)
class Finding:
    """One check result, before it becomes a Django CheckMessage."""

    id: str
    error: bool
    msg: str
    hint: str


def findings(
    fixguard: Mapping[str, Any], login_pages: Mapping[str, str | None], session_cookie_secure: bool
) -> list[Finding]:
    """What is wrong with ``fixguard`` (``settings.FIXGUARD``) for these login pages.

    ``login_pages`` maps ``"LOGIN_URL"`` and ``"the admin login"`` to their paths
    (None: no such page on this site). Credential detection counts as cover when
    ``detect_logins`` is on, in the setting or as FixGuard's default.
    """
    out: list[Finding] = []
    try:
        read_settings(fixguard, "settings.FIXGUARD")
    except ConfigError as exc:
        out.append(Finding("fixguard.E001", True, str(exc), "Fix settings.FIXGUARD."))
    detect = bool(fixguard.get("detect_logins", default("detect_logins", False)))
    rules = []
    for signal in ROTATING:
        texts = fixguard.get(signal, default(signal, ()))
        for text in (texts,) if isinstance(texts, str) else texts:
            try:
                rules.append(parse_rule(signal, text))
            except RuleError as exc:
                out.append(Finding("fixguard.E001", True, f"settings.FIXGUARD: {exc}", "Fix the rule."))
    ruleset = RuleSet(rules)
    codes = {"LOGIN_URL": "fixguard.W001", "the admin login": "fixguard.W002"}
    for label, path in login_pages.items():
        if path is None or detect or ruleset.match("POST", path):
            continue
        out.append(
            Finding(
                codes.get(label, "fixguard.W001"),
                False,
                f"No fixguard login rule covers {label} ({path}) and credential detection is off: a login "
                "there does not rotate the session ID, so an ID planted before it stays usable after it.",
                f'Add "POST {path} 302" to settings.FIXGUARD["login"] (Django answers a successful login '
                "with 302, a failed one with 200), or turn credential detection on.",
            )
        )
    if session_cookie_secure and fixguard.get("secure", default("secure", True)) is False:
        out.append(
            Finding(
                "fixguard.W003",
                False,
                "settings.FIXGUARD['secure'] is False while SESSION_COOKIE_SECURE is True: fixguard's "
                "cookie, which now stands for the session, would travel over plain http.",
                "Remove 'secure': False from settings.FIXGUARD (fixguard's default is True).",
            )
        )
    return out


def local_path(url: str | None) -> str | None:
    """The path of a login URL on this site; None for another site's (an SSO login) or none at all."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return parts.path


def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The Django check: gathers LOGIN_URL, the admin login and the settings, reports :func:`findings`."""
    from django.apps import apps
    from django.conf import settings
    from django.core import checks
    from django.shortcuts import resolve_url
    from django.urls import NoReverseMatch, reverse

    raw = getattr(settings, "FIXGUARD", None)
    if not isinstance(raw, Mapping):
        return [
            checks.Error(
                "settings.FIXGUARD is missing or not a dict: fixguard has no settings to protect with.",
                hint='FIXGUARD = {"secret_key": os.environ["FIXGUARD_SECRET_KEY"], '
                '"login": ["POST /accounts/login/ 302"]}',
                id="fixguard.E001",
            )
        ]
    try:
        login_url: str | None = str(resolve_url(settings.LOGIN_URL))
    except NoReverseMatch:
        login_url = None
    admin_login = None
    if apps.is_installed("django.contrib.admin"):
        try:
            admin_login = reverse("admin:login")
        except NoReverseMatch:
            admin_login = None
    pages = {"LOGIN_URL": local_path(login_url), "the admin login": local_path(admin_login)}
    messages: list[Any] = []
    for finding in findings(raw, pages, bool(getattr(settings, "SESSION_COOKIE_SECURE", False))):
        kind = checks.Error if finding.error else checks.Warning
        messages.append(kind(finding.msg, hint=finding.hint, id=finding.id))
    return messages
