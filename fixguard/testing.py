"""Session-fixation audit for an adopter's own tests: ``fixguard check``, in-process.

::

    from fixguard.testing import audit

    def test_no_session_fixation():
        report = audit(app, login="POST /login 302", probe="/profile",
                       form={"username": "alice", "password": "pw"})
        assert report.findings == [], report.text()

:func:`audit` runs exactly the audit ``fixguard check --app`` runs, against
the WSGI app object given, in this process: no server, no socket. It
returns the same :class:`~fixguard.check.Report` the command prints, with
``findings`` (the failed checks), ``exit_status`` (0, 1, 2) and
``as_dict()`` (the JSON report). A run that could not finish (a login that
does not log in, an exception from the app) has ``exit_status`` 2 and says
why in ``error``; :func:`audit` itself raises only for arguments it cannot
use (:class:`ValueError`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .check import CheckError, Plan, Report, run_plan

__all__ = ["Report", "audit"]


def audit(
    app: Callable[..., Iterable[bytes]],
    *,
    login: str,
    probe: str,
    form: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    basic: tuple[str, str] | str | None = None,
    logout: str | None = None,
    csrf: str | None = None,
    token_field: str | None = None,
) -> Report:
    """Audit ``app`` for session fixation, as ``fixguard check --app`` would.

    :param login: the login request, ``"POST /login"``, with the success
        status when a failed login also answers 200 (``"POST /login/ 302"``).
    :param probe: a page only a logged-in user gets.
    :param form: the login form's fields (a dict, or pairs to repeat a name).
        Values may be ``@env:NAME`` / ``@file:PATH``, as on the command line.
    :param basic: HTTP Basic credentials, ``("alice", "pw")`` or ``"alice:pw"``.
    :param logout: the logout request, ``"POST /logout"``.
    :param csrf: the login form's hidden CSRF field (Django: ``csrfmiddlewaretoken``).
    :param token_field: the login answer's JSON field holding a bearer token.
    """
    if not callable(app):
        raise ValueError(f"audit(app, ...): app must be a WSGI application, not {type(app).__name__}")
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form or ())
    if basic is not None and not isinstance(basic, str):
        user, password = basic
        basic = f"{user}:{password}"
    args = argparse.Namespace(
        url=None,
        app=_describe(app),
        login=login,
        probe=probe,
        form=[f"{name}={value}" for name, value in pairs],
        attacker_form=[],
        json=None,
        basic=basic,
        header=[],
        csrf=csrf,
        login_page=None,
        start="/",
        logout=logout,
        cookie=[],
        token_field=token_field,
        format="text",
        timeout=10.0,
    )
    try:
        plan = Plan.from_args(args)
    except CheckError as exc:
        raise ValueError(f"audit(app, ...): {exc}") from None
    return run_plan(plan, app)


def _describe(app: Any) -> str:
    """``myapp.create_app`` or ``flask.app.Flask object``: the target line of the report."""
    name = getattr(app, "__qualname__", None)
    if isinstance(name, str):
        return f"{getattr(app, '__module__', '?')}.{name}"
    kind = type(app)
    return f"{kind.__module__}.{kind.__qualname__} object"
