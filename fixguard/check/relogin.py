"""``login-rotates-authenticated``: the attacker who logs in as himself first.

Many apps create no session before login (Django's admin, Flask's tutorial),
so planting an anonymous session finds nothing to fix. The attacker then logs
in with an account of his own (``--attacker-form`` names a second account;
without it, the victim's credentials stand in for it), plants the logged-in
session A in the victim's client, and waits for her login. If A still opens
the probe page after that login, or now opens the victim's page, the login
did not give the victim a session of her own: FAIL.

Some apps do not offer a login form to a logged-in session at all (Django's
admin redirects its login page to the index): with ``--csrf``, the victim
then never gets the token to log in with, and the check says so (N/A).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .display import cookies_shown
from .judge import Judge
from .messages import Client
from .report import FAIL, NA, OK, CheckError

if TYPE_CHECKING:
    from .audit import Audit

CHECK = "login-rotates-authenticated"


def check_authenticated_login(audit: Audit, names: list[str], judge: Judge) -> None:
    plan = audit.plan
    second = bool(plan.attacker_form)
    account = "his second account (--attacker-form)" if second else "the same credentials"
    attacker = Client()
    _, hidden = audit.visit(attacker)
    first = audit.login(attacker, hidden or [], attacker=True)
    if not plan.login.accepts(first.status) and second:
        raise CheckError(
            f"--attacker-form: the attacker's login failed: {plan.login} answered {audit.show(first)}, "
            f"expected {plan.login.expectation()}; check the second account's credentials"
        )
    if not plan.login.accepts(first.status):
        audit.record(
            CHECK,
            NA,
            f"the attacker's login with {account} answered {audit.show(first)}, expected "
            f"{plan.login.expectation()}: no logged-in session to plant",
        )
        return
    planted = dict(attacker.jar)
    session = [name for name in names if name in planted]
    own_page = audit.probe(planted)
    if not session or not judge.authenticated(own_page):
        audit.record(
            CHECK,
            NA,
            f"the attacker's login with {account} ({audit.show(first)}) left him "
            f"{cookies_shown(planted, session or None)}, and GET {plan.probe} with it answers "
            f"{audit.show(own_page)}: no logged-in session to plant",
        )
        return
    story = f"the attacker logged in with {account} and planted his {cookies_shown(planted, session)}"

    victim = Client(dict(planted))
    pages, fields = audit.visit(victim, required=False)
    if fields is None:
        audit.record(
            CHECK,
            NA,
            f"{story}; with it, GET {plan.login_page} answers {audit.show(pages[-1])} without the "
            f"{plan.csrf} field: the app offers no login form to a logged-in session",
        )
        return
    login = audit.login(victim, fields)
    story += f"; the victim's {plan.login} -> {audit.show(login)}"
    if not plan.login.accepts(login.status):
        audit.record(CHECK, OK, f"{story}: a login from a logged-in session is refused, nothing adopted")
        return
    kept = [name for name in session if victim.jar.get(name) == planted[name]]
    if kept:
        story += f"; she then holds the same {cookies_shown(victim.jar, kept)}"
    else:
        story += f"; she then holds {cookies_shown(victim.jar, session)}"

    replay = audit.probe(planted)
    alive = judge.authenticated(replay)
    carries = False
    whose: Judge | None = None
    if second:  # two accounts: is the replayed page the attacker's own, or the victim's?
        whose = Judge(audit.probe(victim), own_page, plan.username())
        carries = whose.distinct and whose.authenticated(replay)
    said = f"; GET {plan.probe} with the attacker's {cookies_shown(planted, session)} -> {audit.show(replay)}"
    if carries:
        said += ": the victim's page: it now carries her login"
    elif alive and whose is not None and whose.distinct:
        said += ": still logged in, as the attacker"
    elif alive:
        said += ": still logged in"
    else:
        said += f": {judge.verdict(replay)}"
    audit.record(CHECK, FAIL if alive or carries else OK, story + said)
