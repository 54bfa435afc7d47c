"""Authentication signals: rules, the response header, and the in-app call.

A signal is ``login``, ``logout`` or ``elevate``. Rules (``"POST /login"``,
``"POST /login 302"``, globs allowed in the path) are the strong way to raise
one: fixguard knows *before* the app runs that a request may rotate the
session, and freezes the old record so nothing can ride along. The
``Fixguard-Event`` response header and :func:`signal` arrive only with the
response, after the app has run, so they cannot close that window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

Signal = Literal["login", "logout", "elevate"]
SIGNALS: frozenset[str] = frozenset(("login", "logout", "elevate"))
ROTATING: frozenset[str] = frozenset(("login", "elevate"))

ENVIRON_SIGNALS = "fixguard.signals"
ENVIRON_SUBJECT = "fixguard.subject"
ENVIRON_CONTEXT = "fixguard.context"

_METHOD = re.compile(r"^(?:\*|[A-Z]+)$")
_STATUS = re.compile(r"^(?:[1-5][0-9][0-9]|[1-5]xx)$")
_GLOB_CHARS = frozenset("*?[")


class RuleError(ValueError):
    """A rule string that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Rule:
    """``METHOD /path [STATUS]``: a request and, optionally, the status that makes it count."""

    signal: str  # login, logout, elevate (or another rule set's label)
    method: str  # "*" for any
    path: str
    status: str | None  # "302", "3xx" or None for "below 400"
    text: str

    def status_ok(self, status: int) -> bool:
        """Does this response status make the matched request a signal?"""
        if self.status is None:
            return status < 400
        if self.status.endswith("xx"):
            return status // 100 == int(self.status[0])
        return status == int(self.status)


def parse_rule(signal: str, text: str) -> Rule:
    """Parse one rule, with an error that says what a rule looks like."""
    parts = text.split()
    hint = f'write it as "METHOD /path" or "METHOD /path STATUS", e.g. "POST /login 302"; got {text!r}'
    if len(parts) not in (2, 3):
        raise RuleError(f"{signal} rule: {hint}")
    method, path = parts[0].upper(), parts[1]
    if not _METHOD.match(method):
        raise RuleError(f"{signal} rule: {method!r} is not an HTTP method; {hint}")
    if not path.startswith("/"):
        raise RuleError(f"{signal} rule: the path must start with '/'; {hint}")
    status = parts[2].lower() if len(parts) == 3 else None
    if status is not None and not _STATUS.match(status):
        raise RuleError(f"{signal} rule: {parts[2]!r} is not a status like 200, 302 or 3xx; {hint}")
    return Rule(signal, method, path, status, text)


class RuleSet:
    """All rules, precompiled: exact paths by dictionary, globs by one regex each."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._exact: dict[tuple[str, str], list[Rule]] = {}
        self._globs: list[tuple[re.Pattern[str], Rule]] = []
        for rule in rules:
            if _GLOB_CHARS.isdisjoint(rule.path):
                self._exact.setdefault((rule.method, rule.path), []).append(rule)
            else:
                self._globs.append((re.compile(_glob_to_regex(rule.path)), rule))
        self._paths = frozenset(path for _, path in self._exact)

    def all(self) -> list[Rule]:
        """Every rule, in no particular order."""
        return [r for rs in self._exact.values() for r in rs] + [r for _, r in self._globs]

    def match(self, method: str, path: str) -> list[Rule]:
        """Rules whose method and path match this request (status not yet known)."""
        if path not in self._paths and not self._globs:
            return []
        found = self._exact.get((method, path), []) + self._exact.get(("*", path), [])
        for pattern, rule in self._globs:
            if (rule.method == "*" or rule.method == method) and pattern.match(path):
                found.append(rule)
        return found


def _glob_to_regex(glob: str) -> str:
    """``*`` matches within one path segment, ``**`` across segments, ``?`` one character."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + r"\Z"


def signal(environ: MutableMapping[str, Any], name: str, subject: str | None = None) -> None:
    """Tell fixguard, from app code, that this request is a login, logout or elevation.

    The signal takes effect when the response starts. It cannot freeze the old
    session before the app runs: mark login endpoints with rules as well.
    ``subject`` (optional) names who logged in, for per-user session lists.
    Raises if the request did not pass through FixGuard, because an app that
    believes it is protected when it is not must find out at once.
    """
    if name not in SIGNALS:
        raise ValueError(f"fixguard.signal: unknown signal {name!r}; use one of login, logout, elevate")
    if ENVIRON_CONTEXT not in environ:
        raise RuntimeError(
            "fixguard.signal() was called for a request that FixGuard did not handle: "
            "wrap the WSGI app with FixGuard (app.wsgi_app = FixGuard(app.wsgi_app, ...))"
        )
    environ.setdefault(ENVIRON_SIGNALS, []).append(name)
    if subject is not None:
        environ[ENVIRON_SUBJECT] = subject


def parse_event_header(value: str) -> list[Signal]:
    """The signals named in an app's ``Fixguard-Event`` header (comma-separated)."""
    out: list[Signal] = []
    for item in value.split(","):
        name = item.strip().lower()
        if name == "login":
            out.append("login")
        elif name == "logout":
            out.append("logout")
        elif name == "elevate":
            out.append("elevate")
    return out
