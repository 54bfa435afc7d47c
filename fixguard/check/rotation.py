"""The checks of a login from an anonymous session: rotation, replay, a client-chosen ID.

``login-rotates-id``: the session cookies the victim held before login (the
attacker's, planted) must change at login. ``pre-login-id-dead``: replaying
them afterwards must not open the victim's page. ``chosen-id-refused``: a
victim arriving with an ID the check made up must not be logged in under it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from .display import cookies_shown, mask, printable
from .judge import Judge
from .messages import Client
from .report import FAIL, NA, OK, WARN

if TYPE_CHECKING:
    from .audit import Audit


def check_rotation(
    audit: Audit, names: list[str], planted: dict[str, str], before: dict[str, str], after: dict[str, str]
) -> None:
    notes, unchanged, existed = [], False, False
    for name in names:
        old, new = before.get(name), after.get(name)
        origin = " (planted by the attacker)" if old is not None and planted.get(name) == old else ""
        shown = printable(name)
        if old is None:
            notes.append(f"{shown}: none before login, {mask(new or '')} issued by the login")
            continue
        existed = True
        if new == old:
            unchanged = True
            notes.append(f"{shown}: {mask(old)}{origin} before login and still {mask(old)} after it")
        else:
            notes.append(f"{shown}: {mask(old)}{origin} before login, {mask(new or '')} after it")
    if not existed:
        audit.record(
            "login-rotates-id",
            NA,
            f"no session cookie before login ({'; '.join(notes) or 'none'}); "
            "the client-chosen ID check covers planting one, the authenticated re-login check "
            "a planted logged-in session",
        )
    elif unchanged:
        audit.record("login-rotates-id", FAIL, "; ".join(notes))
    else:
        audit.record("login-rotates-id", OK, "; ".join(notes))


def check_pre_login_replay(
    audit: Audit, names: list[str], planted: dict[str, str], before: dict[str, str], judge: Judge
) -> None:
    held = [name for name in names if name in before]
    if not held:
        audit.record(
            "pre-login-id-dead",
            NA,
            f"no session cookie existed before login (the client held {cookies_shown(before)}): "
            "nothing to replay",
        )
        return
    replay = audit.probe(before)
    attacker = all(planted.get(name) == before[name] for name in held)
    whose = "the attacker's planted " if attacker else "the victim's pre-login "
    said = (
        f"GET {audit.plan.probe} with {whose}{cookies_shown(before, held)} -> {audit.show(replay)}: "
        f"{judge.verdict(replay)}"
    )
    if judge.authenticated(replay):
        audit.record(
            "pre-login-id-dead",
            FAIL,
            f"{said} ({audit.show(judge.auth)}); anonymous gets {audit.show(judge.anon)}",
        )
    else:
        audit.record("pre-login-id-dead", OK, f"{said}; the victim's own is {audit.show(judge.auth)}")


def check_chosen_id(audit: Audit, names: list[str], judge: Judge) -> None:
    plan = audit.plan
    chosen = dict(plan.planted) or {name: "fgcheck" + secrets.token_hex(16) for name in names}
    if not chosen:
        audit.record("chosen-id-refused", NA, "no session cookie to plant")
        return
    audit.redactor.add(*chosen.values())
    victim = Client(dict(chosen))
    _, hidden = audit.visit(victim)
    kept_to_login = {n: v for n, v in chosen.items() if victim.jar.get(n) == v}
    login = audit.login(victim, hidden or [])
    planted = cookies_shown(chosen)
    if not plan.login.accepts(login.status):
        audit.record(
            "chosen-id-refused",
            WARN,
            f"planted {planted}: the login then failed ({audit.show(login)}), so nothing was adopted, "
            "but the app does not cope with an unknown ID",
        )
        return
    echoed = [c.name for c in login.set_cookies if chosen.get(c.name) == c.value and not c.deletes]
    replay = audit.probe(chosen)
    stolen = judge.authenticated(replay)
    issued = [n for n in names if n in victim.jar and victim.jar[n] != chosen.get(n)]
    story = f"planted {planted}"
    if set(kept_to_login) != set(chosen):
        dropped = ", ".join(printable(n) for n in sorted(set(chosen) - set(kept_to_login)))
        story += f" (the app dropped or replaced {dropped} before login)"
    if echoed:
        story += f"; the login set {', '.join(printable(n) for n in echoed)} to the planted value"
    elif issued:
        story += f"; the login issued {cookies_shown(victim.jar, issued)}"
    story += f"; GET {plan.probe} with the planted value -> {audit.show(replay)}: {judge.verdict(replay)}"
    audit.record("chosen-id-refused", FAIL if stolen or echoed else OK, story)
