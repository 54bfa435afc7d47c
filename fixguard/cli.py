"""The ``fixguard`` command: ``fixguard demo`` plays the attack without and with fixguard."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="fixguard", description="WSGI middleware that makes session fixation impossible."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="play a session-fixation attack against the example apps, bare and protected",
        description="Plays plant / victim login / replay against each example app, first bare, "
        "then wrapped in FixGuard. Exit 0 when every bare app falls and every protected one holds.",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(sys.stdout)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
