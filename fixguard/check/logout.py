"""The logout checks: the session ends, and the ID it had stays dead.

``logout-ends-session``: after the logout request, the victim's client (with
whatever the logout answer left it) gets the anonymous answer.
``logout-id-dead``: the cookies (and token) held before the logout, replayed,
get the anonymous answer too: a logout that only asks the browser to forget
its cookie, while the server still honours it, fails here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .display import cookies_shown, mask
from .judge import Judge
from .messages import Answer, Client
from .report import FAIL, OK, CheckError

if TYPE_CHECKING:
    from .audit import Audit


def check_logout(
    audit: Audit,
    victim: Client,
    authenticated: Answer,
    judge: Judge | None,
    token: str | None,
    token_judge: Judge | None,
) -> None:
    plan = audit.plan
    assert plan.logout is not None
    before = dict(victim.jar)
    form: list[tuple[str, str]] | None = None
    if plan.csrf:  # the logout form's token: on the authenticated page, or on the logout page
        form = audit.csrf_fields(authenticated, plan.logout.path)
        if form is None and plan.logout.method != "GET":
            form = audit.csrf_fields(audit.send("GET", plan.logout.path, victim), plan.logout.path)
    bye = audit.send(
        plan.logout.method,
        plan.logout.path,
        victim,
        form=form,
        bearer=token if token_judge is not None else None,
        referer=plan.probe,
    )
    audit.context["logout"] = f"{plan.logout} -> {audit.show(bye)}"
    if not plan.logout.accepts(bye.status):
        raise CheckError(
            f"logout failed: {plan.logout} answered {audit.show(bye)}, expected {plan.logout.expectation()}"
        )
    ends: list[str] = []
    dead: list[str] = []
    ended = stayed_dead = True
    if judge is not None:
        names = audit.context.get("session_cookies") or list(before)
        after = audit.probe(victim)
        ended = not judge.authenticated(after)
        held = (
            cookies_shown(victim.jar, names) if any(n in victim.jar for n in names) else "no session cookie"
        )
        ends.append(
            f"the client then holds {held}; GET {plan.probe} -> {audit.show(after)}: {judge.verdict(after)}"
        )
        replay = audit.probe(before)
        stayed_dead = not judge.authenticated(replay)
        dead.append(
            f"GET {plan.probe} with the pre-logout {cookies_shown(before, names)} -> {audit.show(replay)}: "
            f"{judge.verdict(replay)}"
        )
    if token_judge is not None and token is not None:
        replay = audit.probe({}, bearer=token)
        alive = token_judge.authenticated(replay)
        stayed_dead = stayed_dead and not alive
        ended = ended and not alive
        dead.append(f"GET {plan.probe} with the login's token {mask(token)} -> {audit.show(replay)}")
    audit.record("logout-ends-session", OK if ended else FAIL, "; ".join(ends or dead))
    audit.record("logout-id-dead", OK if stayed_dead else FAIL, "; ".join(dead))
