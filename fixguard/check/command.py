"""``fixguard check`` on the command line, and the one function that turns a plan into a report.

:func:`run_plan` is shared by the command line (over HTTP, or in-process with
``--app``) and by :func:`fixguard.testing.audit`: the same audit, the same
report, whatever carries the requests. Before the report leaves, every
secret the run saw is masked and every string the target could have
influenced is escaped (:func:`~.display.printable`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from .audit import Audit
from .display import map_strings, printable
from .inprocess import WSGIApp, WsgiTransport, load_app
from .plan import Plan, shown_url
from .report import CHECKS, EXIT_ERROR, CheckError, Report
from .transport import HttpTransport, Transport


def user_agent() -> str:
    """``fixguard-check/<version>``: the version the package metadata says, from one source."""
    from .. import __version__

    return f"fixguard-check/{__version__} (+OWASP WSTG-SESS-03)"


def run_plan(plan: Plan, app: WSGIApp | None = None) -> Report:
    """Run every check of ``plan`` against its URL, or against ``app`` in-process.

    Never raises for the target's behaviour: a run that cannot finish is a
    report with ``error`` set (exit status 2).
    """
    transport: Transport
    if app is not None:
        transport = WsgiTransport(app, plan.origin, plan.prefix)
    else:
        transport = HttpTransport(plan.origin, plan.prefix, plan.timeout)
    audit = Audit(plan, transport, user_agent())
    error = None
    try:
        audit.run()
    except CheckError as exc:
        error = str(exc)
    finally:
        transport.close()
    results = [audit.results[check] for check in CHECKS if check in audit.results]

    def clean(text: str) -> str:
        return printable(audit.redactor.clean(text))

    for r in results:
        r.evidence = clean(r.evidence)
    context = map_strings(audit.context, clean)
    return Report(printable(plan.url), results, context, clean(error) if error else None, transport.sent)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fixguard check``."""
    parser.description = (
        "Play the OWASP session-fixation test (WSTG-SESS-03) against a running app, or a WSGI app "
        "in-process, with or without fixguard: plant a session ID, log in, replay it. "
        "Exit 0: no finding; 1: findings; 2: could not run."
    )
    parser.epilog = (
        'Example: fixguard check http://127.0.0.1:8000 --login "POST /login" --form username=alice '
        "--form password=@env:APP_PASSWORD --probe /profile --logout 'POST /logout'. "
        "Any value of --form, --attacker-form, --basic and --header, and the whole --json body, may be "
        "@env:NAME (an environment variable) or @file:PATH (a file), to keep secrets out of the command line."
    )
    parser.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="the app's base URL, http(s)://host[:port][/prefix] (with --app: the URL it is "
        "audited as, default http://localhost)",
    )
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="audit this WSGI app in-process, no server (myproject.wsgi:application, or "
        "package.module:create_app() to call a factory)",
    )
    parser.add_argument(
        "--login",
        required=True,
        metavar="REQUEST",
        help='the login request, e.g. "POST /login"; add the success status when a failed login also '
        'answers 200: "POST /admin/login/ 302"',
    )
    parser.add_argument(
        "--probe", required=True, metavar="PATH", help="a page only a logged-in user gets, e.g. /profile"
    )
    parser.add_argument(
        "--form", action="append", default=[], metavar="NAME=VALUE", help="a login form field (repeat)"
    )
    parser.add_argument(
        "--attacker-form",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a field of the attacker's own login, on top of --form (repeat), to name a second account "
        "for the authenticated re-login check (default: the same credentials)",
    )
    parser.add_argument("--json", metavar="BODY", help="the login body as JSON instead of a form")
    parser.add_argument("--basic", metavar="USER:PASS", help="log in with HTTP Basic credentials")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header sent with every request (repeat), e.g. an API gateway key",
    )
    parser.add_argument(
        "--csrf",
        metavar="FIELD",
        help="GET the login page first and send its hidden FIELD with the cookies it set "
        "(Django: csrfmiddlewaretoken, Flask-WTF: csrf_token)",
    )
    parser.add_argument(
        "--login-page", metavar="PATH", help="where the login form is (default: the login path)"
    )
    parser.add_argument(
        "--start", default="/", metavar="PATH", help="the first page a visitor opens (default /; '' for none)"
    )
    parser.add_argument("--logout", metavar="REQUEST", help='the logout request, "POST /logout"')
    parser.add_argument(
        "--cookie",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="plant this value before login (repeat; default: a random value for each session cookie)",
    )
    parser.add_argument(
        "--token-field",
        metavar="FIELD",
        help="the login answer's JSON field holding a bearer token (dotted for nested: data.token)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format (default text)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="for each whole request over HTTP (default 10)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``fixguard check`` for parsed arguments; print the report; return the exit status."""
    out = out or sys.stdout
    output = getattr(args, "format", "text")
    try:
        plan = Plan.from_args(args)
        app = load_app(plan.app) if plan.app else None
        report = run_plan(plan, app)
    except CheckError as exc:
        target = getattr(args, "app", None) or shown_url(getattr(args, "url", None) or "")
        report = Report(printable(target), [], {}, printable(str(exc)), 0)
    if output == "json":
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), file=out)
    else:
        print(report.text(), file=out)
    return report.exit_status


def main(argv: list[str] | None = None) -> int:
    """``fixguard check`` on its own (for tests and ``python -m fixguard.check``)."""
    parser = argparse.ArgumentParser(prog="fixguard check")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    return run(args)
