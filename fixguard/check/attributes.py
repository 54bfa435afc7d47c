"""The session cookie's attributes: HttpOnly, Secure, SameSite, the ``__Host-`` prefix.

Judged on the last ``Set-Cookie`` the app sent for each session cookie.
Over plain http, ``Secure`` and ``__Host-`` cannot be judged at all (a
browser drops a Secure cookie set over http, and the app may well set the
flag only behind its https proxy): both are N/A there, never PASS, whatever
the cookie says, and the evidence says to run against the https URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .display import printable
from .report import FAIL, NA, OK, WARN

if TYPE_CHECKING:
    from .audit import Audit

_ATTRIBUTE_CHECKS = ("cookie-httponly", "cookie-secure", "cookie-samesite", "cookie-host-prefix")


def check_cookie_attributes(audit: Audit, names: list[str]) -> None:
    plan = audit.plan
    cookies = [audit.attrs[name] for name in names if name in audit.attrs]
    if not cookies:
        why = "no session cookie set by the app" if not names else "the app never set the session cookie"
        for check in _ATTRIBUTE_CHECKS:
            audit.record(check, NA, why)
        return

    def shown(cookie_names: list[str]) -> str:
        return ", ".join(printable(name) for name in cookie_names)

    lacking = [c.name for c in cookies if "httponly" not in c.attrs]
    if lacking:
        audit.record("cookie-httponly", FAIL, f"{shown(lacking)}: no HttpOnly, scripts can read the ID")
    else:
        audit.record("cookie-httponly", OK, ", ".join(f"{printable(c.name)}: HttpOnly" for c in cookies))

    insecure = [c.name for c in cookies if "secure" not in c.attrs]
    if not plan.https:
        flagged = [c.name for c in cookies if "secure" in c.attrs]
        said = (
            f"{shown(insecure)}: no Secure, and this is plain http"
            if insecure
            else f"{shown(flagged)}: Secure, but this is plain http"
        )
        audit.record("cookie-secure", NA, f"{said}: run the check against the https URL the app is served at")
    elif insecure:
        audit.record("cookie-secure", FAIL, f"{shown(insecure)}: no Secure, sent over plain http too")
    else:
        audit.record("cookie-secure", OK, ", ".join(f"{printable(c.name)}: Secure" for c in cookies))

    notes, worst = [], OK
    for c in cookies:
        value = c.attrs.get("samesite", "").capitalize()
        if value in ("Lax", "Strict"):
            notes.append(f"{printable(c.name)}: SameSite={value}")
        elif value == "None":
            notes.append(f"{printable(c.name)}: SameSite=None, sent on cross-site requests")
            worst = WARN
        else:
            notes.append(
                f"{printable(c.name)}: no SameSite (browsers differ: Chrome assumes Lax, others None)"
            )
            worst = WARN
    audit.record("cookie-samesite", worst, "; ".join(notes))

    if not plan.https:
        audit.record("cookie-host-prefix", NA, "plain http: __Host- cookies need Secure and https")
        return
    notes, worst = [], OK
    for c in cookies:
        if c.name.startswith("__Host-"):
            bad = "secure" not in c.attrs or "domain" in c.attrs or c.attrs.get("path") != "/"
            if bad:
                notes.append(
                    f"{printable(c.name)}: __Host- without Secure, Path=/ and no Domain: browsers drop it"
                )
                worst = FAIL
            else:
                notes.append(f"{printable(c.name)}: __Host-, Secure, Path=/, no Domain")
        else:
            notes.append(
                f"{printable(c.name)}: no __Host- prefix, so a sibling subdomain can plant or shadow it"
            )
            worst = WARN if worst == OK else worst
    audit.record("cookie-host-prefix", worst, "; ".join(notes))
