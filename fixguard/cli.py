"""The ``fixguard`` command.

``fixguard demo`` plays the attack without and with fixguard (``--browser``:
in headless Chromium, with screenshots); ``fixguard check`` audits an app for
session fixation; ``fixguard --version``; ``fixguard sessions list|revoke
SUBJECT`` shows or ends one user's sessions in the deployment's store, for the
operator after a password change or an incident.

Each command is added to the parser by one ``_add_*`` function that sets
``run``, the function that carries it out and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

Run = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fixguard", description="WSGI middleware that makes session fixation impossible."
    )
    parser.add_argument("--version", action="version", version=f"fixguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(commands)
    _add_check(commands)
    _add_sessions(commands)
    args = parser.parse_args(argv)
    run: Run | None = getattr(args, "run", None)
    if run is None:
        (getattr(args, "help_of", None) or parser).print_help()
        return 2
    return run(args)


# -- fixguard check -----------------------------------------------------------------------


def _add_check(commands: Any) -> None:
    from . import check

    parser = commands.add_parser(
        "check", help="audit a running app for session fixation (OWASP WSTG-SESS-03)"
    )
    check.add_arguments(parser)
    parser.set_defaults(run=check.run)


# -- fixguard demo -----------------------------------------------------------------------


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="play a session-fixation attack against the example apps, bare and protected",
        description="Plays plant / victim login / replay against each example app, first bare, "
        "then wrapped in FixGuard. Exit 0 when every bare app falls and every protected one holds.",
    )
    demo.add_argument(
        "--browser",
        action="store_true",
        help="play it in headless Chromium against the examples served by gunicorn over https, "
        "with a screenshot of every step",
    )
    demo.add_argument("--out", metavar="DIR", type=Path, help="folder for the screenshots (with --browser)")
    demo.set_defaults(run=_run_demo, parser=demo)


def _run_demo(args: argparse.Namespace) -> int:
    if args.browser:
        from .demo_browser import run_browser_demo

        return run_browser_demo(sys.stdout, args.out)
    if args.out is not None:
        args.parser.error("--out is only for --browser")
    from .demo import run_demo

    return run_demo(sys.stdout)


# -- fixguard sessions -------------------------------------------------------------------

#: Exit statuses of ``fixguard sessions``.
FOUND, NOTHING_FOUND, CANNOT_RUN = 0, 1, 2

_SESSIONS_EPILOG = """\
The store is the deployment's: the TOML file named by --config (default: $FIXGUARD_CONFIG),
then FIXGUARD_* variables on top, as the gunicorn hooks read it. It must be Redis
(FIXGUARD_REDIS_URL, and FIXGUARD_REDIS_PREFIX if the app uses one): a MemoryStore lives
inside the server process and cannot be reached from here.

Only sessions whose login named the user are found: the app sends Fixguard-Subject with the
login, or calls fixguard.signal(environ, "login", subject=...). SUBJECT must be spelt exactly
as the app sent it.

Exit status: 0 sessions found (list) or revoked (revoke); 1 the subject has no live session;
2 could not run (configuration missing or bad, store unreachable). Output never contains a
session ID: fingerprints are short keyed hashes, the same as in fixguard's events.
"""


def _add_sessions(commands: Any) -> None:
    sessions = commands.add_parser(
        "sessions",
        help="list or revoke one user's sessions in the configured store",
        description="List or revoke the live sessions of one subject (user) in the store the "
        "deployment is configured with.",
        epilog=_SESSIONS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sessions.set_defaults(help_of=sessions)
    actions = sessions.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (
        ("list", "show the subject's live sessions: fingerprint, created, signed in, last seen"),
        ("revoke", "end every live session of the subject now; their IDs get 401 from then on"),
    ):
        action = actions.add_parser(
            name,
            help=text,
            description=text[0].upper() + text[1:] + ".",
            epilog=_SESSIONS_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        action.add_argument("subject", metavar="SUBJECT", help="the user, as the app named it at login")
        action.add_argument(
            "--config", metavar="FILE", help="TOML file with a [fixguard] table (default: $FIXGUARD_CONFIG)"
        )
        action.add_argument(
            "--format", choices=("table", "json"), default="table", help="output format (default: table)"
        )
        action.set_defaults(run=_run_sessions)


def _run_sessions(args: argparse.Namespace) -> int:
    from .config import ConfigError, make_store, read_deployment
    from .core.state import MAX_SUBJECT  # the middleware indexes subjects cut to this length
    from .redis_settings import describe, wants_redis
    from .stores.base import StoreError

    out, err = sys.stdout, sys.stderr
    subject: str = args.subject[:MAX_SUBJECT]
    if not subject:
        return _cannot_run(err, "SUBJECT is empty: give the user name the app sends as Fixguard-Subject")
    try:
        values = read_deployment(path=args.config)
        if not wants_redis(values):
            return _cannot_run(
                err,
                "no shared store is configured: set FIXGUARD_REDIS_URL (or redis_url in the [fixguard] "
                "table of the --config / $FIXGUARD_CONFIG file; or FIXGUARD_REDIS_SENTINELS and "
                "FIXGUARD_REDIS_SENTINEL_MASTER) to the Redis the app uses. Without it "
                "the app keeps sessions in its own process memory, which no other process can reach.",
            )
        store = make_store(values)
    except ConfigError as exc:
        return _cannot_run(err, str(exc))
    assert store is not None  # redis_url or redis_sentinels is set
    where = describe(values)
    revoking = False
    try:
        found = store.sessions(subject)
        revoking = args.action == "revoke"
        revoked = store.revoke(subject) if revoking else None
    except StoreError as exc:
        if revoking:  # some sessions may have ended already, unacknowledged by the replicas
            outcome = ". The revoke may be incomplete: run it again once the store answers"
        else:
            outcome = ". Nothing was revoked." if args.action == "revoke" else ""
        return _cannot_run(
            err,
            f"the store did not answer ({exc}): check FIXGUARD_REDIS_URL and that Redis is running"
            + outcome,
        )
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    if args.format == "json":
        _print_json(out, subject, found, revoked)
    elif revoked is None:
        _print_list(out, subject, where, found)
    else:
        _print_revoked(out, subject, where, found, revoked)
    count = len(found) if revoked is None else revoked
    return FOUND if count else NOTHING_FOUND


def _cannot_run(err: TextIO, message: str) -> int:
    err.write(f"fixguard sessions: {message}\n")
    return CANNOT_RUN


def _print_list(out: TextIO, subject: str, where: str, found: Sequence[Any]) -> None:
    if not found:
        out.write(
            f"No live session of {subject!r} ({where}).\n"
            "Subjects match exactly as the app sent them; logins that named no subject are not indexed.\n"
        )
        return
    plural = "" if len(found) == 1 else "s"
    out.write(f"{len(found)} live session{plural} of {subject!r} ({where}):\n\n")
    _print_table(out, found)


def _print_revoked(out: TextIO, subject: str, where: str, found: Sequence[Any], revoked: int) -> None:
    if not revoked:
        out.write(f"No live session of {subject!r} to revoke ({where}).\n")
        return
    plural = "" if revoked == 1 else "s"
    out.write(f"Revoked {revoked} session{plural} of {subject!r} ({where}).\n")
    if len(found) == revoked:  # otherwise a login or an expiry happened in between: the count is the truth
        out.write("\n")
        _print_table(out, found)
        out.write("\n")
    out.write("Their IDs are refused from now on (401, fixation_blocked event with reason 'revoked').\n")


def _print_table(out: TextIO, found: Sequence[Any], now: float | None = None) -> None:
    """Fingerprint and three times per session, aligned; the times local, with how long ago."""
    now = time.time() if now is None else now
    rows = [("FINGERPRINT", "CREATED", "SIGNED IN", "LAST SEEN")]
    for session in found:
        rows.append(
            (
                session.fingerprint,
                human_time(session.created, now),
                human_time(session.authenticated, now),
                human_time(session.touched, now),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write(("  " + "  ".join(cells)).rstrip() + "\n")


def human_time(moment: float | None, now: float) -> str:
    """``2026-01-05 10:31:07 UTC (3 min ago)``: local time with its zone, and the distance to ``now``."""
    if moment is None:
        return "-"
    stamp = datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{stamp} ({_ago(now - moment)})"


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _print_json(out: TextIO, subject: str, found: Sequence[Any], revoked: int | None) -> None:
    sessions = [
        {
            "fingerprint": s.fingerprint,
            "created": s.created,
            "authenticated": s.authenticated,
            "touched": s.touched,
        }
        for s in found
    ]
    document: dict[str, Any] = {"subject": subject, "sessions": sessions}
    if revoked is not None:
        document["revoked"] = revoked
    out.write(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
