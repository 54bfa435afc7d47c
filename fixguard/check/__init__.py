"""``fixguard check``: audit a web app for session fixation (OWASP WSTG-SESS-03).

The check plays the test an auditor plays by hand, for any app, with or
without fixguard in front of it, over HTTP against a URL or in-process
against a WSGI app object (``--app``, :func:`fixguard.testing.audit`):

1. an anonymous visitor asks for the ``--probe`` page: the *anonymous answer*;
2. an attacker visits the site and keeps whatever cookies (and token) he is
   given; he plants them in the victim's client;
3. the victim logs in with the credentials given; her answer for the probe
   page is the *authenticated answer*. Which of her cookies carry the session
   is found by dropping each in turn and asking the probe again;
4. the attacker replays what he held before the login;
5. another victim arrives with a session ID the check *chose*, and logs in;
6. with ``--logout``, the victim logs out, and her old ID is replayed;
7. with ``--token-field``, the same for a bearer token: one the client chose,
   and one issued before login;
8. the attacker logs in as himself, plants his logged-in session, and the
   victim logs in from it: that session must not work afterwards.

Whether an answer is "authenticated" is judged against both references
(:mod:`.judge`). So an app that already rotates its session at login gets no
finding, and the check refuses to run (exit 2) when the login does not
visibly authenticate the probe at all.

It talks only to the target given, follows no redirect, bounds every request
in time and size and the run in requests, and shows what the target sent
with secrets cut short and control characters escaped (:mod:`.display`).

Exit status: 0 no finding, 1 findings, 2 could not run (and why).
"""

from .command import add_arguments, main, run, run_plan, user_agent
from .plan import Endpoint, Plan
from .report import (
    CHECKS,
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    FAIL,
    NA,
    OK,
    WARN,
    CheckError,
    Report,
    Result,
)

__all__ = [
    "CHECKS",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "FAIL",
    "NA",
    "OK",
    "WARN",
    "CheckError",
    "Endpoint",
    "Plan",
    "Report",
    "Result",
    "add_arguments",
    "main",
    "run",
    "run_plan",
    "user_agent",
]
