"""The bearer-token checks: a token the client chose, and one issued before login.

``token-chosen-refused``: a login presenting a token the check made up must
not return it, nor make it work. ``token-pre-login-dead``: a token handed
out before login (the attacker's, from the start page) must not work after a
login that presented it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from .display import mask
from .judge import Judge
from .messages import Client
from .pages import find_token
from .report import FAIL, NA, OK

if TYPE_CHECKING:
    from .audit import Audit


def check_tokens(audit: Audit, judge: Judge, planted: str | None) -> None:
    plan = audit.plan
    assert plan.token_field is not None
    field_name = ".".join(plan.token_field)
    if plan.basic:
        audit.record(
            "token-chosen-refused", NA, "the login uses HTTP Basic, which takes the Authorization header"
        )
        audit.record("token-pre-login-dead", NA, "the login uses HTTP Basic")
        return
    chosen = "fgcheck" + secrets.token_hex(16)
    audit.redactor.add(chosen)
    _check_one_token(audit, "token-chosen-refused", chosen, "a client-chosen token", judge, field_name)
    if planted is None:
        audit.record(
            "token-pre-login-dead",
            NA,
            f"no {field_name} was issued before login" + (f" (GET {plan.start})" if plan.start else ""),
        )
    else:
        _check_one_token(
            audit, "token-pre-login-dead", planted, f"the pre-login {mask(planted)}", judge, field_name
        )


def _check_one_token(audit: Audit, check: str, value: str, what: str, judge: Judge, field_name: str) -> None:
    plan = audit.plan
    client = Client()
    _, hidden = audit.visit(client)
    login = audit.login(client, hidden or [], bearer=value)
    if not plan.login.accepts(login.status):
        audit.record(check, OK, f"login presenting {what} was refused ({audit.show(login)}): nothing adopted")
        return
    issued = find_token(login, plan.token_field or ())
    replay = audit.probe({}, bearer=value)
    stolen = judge.authenticated(replay)
    story = f"login presenting {what} ({mask(value)})"
    if issued == value:
        story += f" returned the same {field_name}"
    elif issued:
        story += f" returned a new {field_name} {mask(issued)}"
    story += f"; GET {plan.probe} with it -> {audit.show(replay)}: {judge.verdict(replay)}"
    audit.record(check, FAIL if stolen or issued == value else OK, story)
