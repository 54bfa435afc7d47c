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
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

Signal = Literal["login", "logout", "elevate"]
SIGNALS: frozenset[str] = frozenset(("login", "logout", "elevate"))
ROTATING: frozenset[str] = frozenset(("login", "elevate"))

ENVIRON_SIGNALS = "fixguard.signals"
ENVIRON_SUBJECT = "fixguard.subject"
ENVIRON_CONTEXT = "fixguard.context"

#: Methods a rule may name: RFC 9110's, WebDAV's (RFC 4918, 3253, 3744, 4791, 5323, 5842),
#: PATCH (RFC 5789), PURGE (caches) and QUERY (the safe method with a body). ``*`` is any.
METHODS: frozenset[str] = frozenset(
    (
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
        "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE", "VERSION-CONTROL",
        "MKWORKSPACE", "UPDATE", "LABEL", "BASELINE-CONTROL", "ACL", "MKCALENDAR", "ORDERPATCH",
        "BIND", "UNBIND", "REBIND", "PURGE", "QUERY",
    )
)  # fmt: skip
_STATUS = re.compile(r"^(?:[1-5][0-9][0-9]|[1-5]xx)$")
_GLOB_CHARS = frozenset("*[")
_SLASHES = re.compile(r"/{2,}")


class RuleError(ValueError):
    """A rule string that cannot be understood."""


def normalize_path(path: str) -> str:
    """A path as routers see it: runs of ``/`` count as one, a trailing ``/`` is optional.

    ``//login``, ``/login/`` and ``///login//`` all become ``/login``; ``/`` stays ``/``.
    """
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path or "/"


def wsgi_form(path: str) -> str:
    """A configured path in the form WSGI servers put in ``PATH_INFO``.

    Servers percent-decode the URL and hand its bytes over as latin-1 text, so
    ``/connexion-é`` (or ``/connexion-%C3%A9``) arrives as ``/connexion-Ã©``.
    """
    raw = unquote_to_bytes(path) if "%" in path else path.encode("utf-8")
    return raw.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Rule:
    """``METHOD /path [STATUS] [-> LOCATION]``: a request and what makes its answer count.

    ``path`` is normalised and in WSGI form. ``location`` (a path glob, ``!`` in
    front to negate) is matched against the path of the answer's ``Location``.
    """

    signal: str  # login, logout, elevate (or another rule set's label)
    method: str  # "*" for any
    path: str
    status: str | None  # "302", "3xx" or None for "below 400"
    text: str
    location: str | None = None  # the glob, without its "!"
    location_negated: bool = False
    location_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def status_ok(self, status: int) -> bool:
        """Does this response status make the matched request a signal?"""
        if self.status is None:
            return status < 400
        if self.status.endswith("xx"):
            return status // 100 == int(self.status[0])
        return status == int(self.status)

    def location_ok(self, location: str | None, request_path: str) -> bool:
        """Does the answer's ``Location`` satisfy the rule's ``-> LOCATION`` (if it has one)?

        A relative Location is resolved against the request path. With no
        Location at all, ``-> /x`` does not match and ``-> !/x`` does: the
        negated form exists to say "anything but back to the form".
        """
        if self.location_pattern is None:
            return True
        if not location:
            return self.location_negated
        target = location_path(location, request_path)
        return (self.location_pattern.match(target) is not None) != self.location_negated

    def counts(self, status: int, location: str | None, request_path: str) -> bool:
        """Status and Location together: does this answer make the request a signal?"""
        return self.status_ok(status) and self.location_ok(location, request_path)


def location_path(location: str, request_path: str) -> str:
    """The normalised WSGI-form path a ``Location`` header points at (relative ones resolved)."""
    location = location.strip()
    path = urlsplit(location).path
    if not path:
        path = request_path
    elif not path.startswith("/"):
        path = urljoin(request_path, path)
    try:
        return normalize_path(wsgi_form(path))
    except UnicodeError:  # pragma: no cover - latin-1 decodes every byte
        return normalize_path(path)


def _path_pattern(signal: str, path: str, hint: str) -> tuple[str, re.Pattern[str] | None]:
    """Check and normalise one path (or Location) glob; its regex when it has glob characters."""
    if not path.startswith("/"):
        raise RuleError(f"{signal} rule: the path must start with '/'; {hint}")
    if "?" in path:
        raise RuleError(
            f"{signal} rule: rules match paths, never query strings, and '?' is not a wildcard: "
            f"drop the '?' and what follows it (use '*' for any characters in a segment); {hint}"
        )
    if "#" in path:
        raise RuleError(f"{signal} rule: a path has no '#fragment'; drop it; {hint}")
    normal = normalize_path(wsgi_form(path))
    if _GLOB_CHARS.isdisjoint(normal):
        return normal, None
    try:
        return normal, re.compile(_glob_to_regex(normal))
    except re.error as exc:
        raise RuleError(f"{signal} rule: {path!r} is not a valid glob ({exc}); {hint}") from None


def parse_rule(signal: str, text: str) -> Rule:
    """Parse one rule, with an error that says what a rule looks like."""
    hint = (
        'write it as "METHOD /path", "METHOD /path STATUS" or "METHOD /path STATUS -> /where", '
        f'e.g. "POST /login 302 -> !/login*"; got {text!r}'
    )
    if not isinstance(text, str):
        raise RuleError(f"{signal} rule: a rule is a string; {hint}")
    head, arrow, target = text.partition("->")
    parts = head.split()
    if len(parts) not in (2, 3):
        raise RuleError(f"{signal} rule: {hint}")
    method, path = parts[0].upper(), parts[1]
    if method != "*" and method not in METHODS:
        raise RuleError(f"{signal} rule: {parts[0]!r} is not an HTTP method; {hint}")
    status = parts[2].lower() if len(parts) == 3 else None
    if status is not None and not _STATUS.match(status):
        raise RuleError(f"{signal} rule: {parts[2]!r} is not a status like 200, 302 or 3xx; {hint}")
    normal, _ = _path_pattern(signal, path, hint)
    location: str | None = None
    negated = False
    pattern: re.Pattern[str] | None = None
    if arrow:
        where = target.split()
        if len(where) != 1:
            raise RuleError(f"{signal} rule: '->' must be followed by one path glob; {hint}")
        location = where[0]
        if location.startswith("!"):
            negated, location = True, location[1:]
        location, compiled = _path_pattern(signal, location, hint)
        pattern = compiled or re.compile(re.escape(location) + r"\Z")
    return Rule(signal, method, normal, status, text, location, negated, pattern)


class RuleSet:
    """All rules, precompiled: exact paths by dictionary, globs by one regex each.

    Requests are matched on their normalised ``PATH_INFO`` (see
    :func:`normalize_path`); ``HEAD`` also matches ``GET`` rules, as routers do.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._exact: dict[tuple[str, str], list[Rule]] = {}
        self._globs: list[tuple[re.Pattern[str], Rule]] = []
        for rule in rules:
            if _GLOB_CHARS.isdisjoint(rule.path):
                self._exact.setdefault((rule.method, rule.path), []).append(rule)
            else:
                self._globs.append((re.compile(_glob_to_regex(rule.path)), rule))
        self._paths = frozenset(path for _, path in self._exact)
        # the methods a rule can match (HEAD matches GET rules; "*" any): others skip the path work
        methods = {r.method for rs in self._exact.values() for r in rs} | {r.method for _, r in self._globs}
        if "GET" in methods:
            methods.add("HEAD")
        self._methods: frozenset[str] | None = None if "*" in methods else frozenset(methods)

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)

    def all(self) -> list[Rule]:
        """Every rule, in no particular order."""
        return [r for rs in self._exact.values() for r in rs] + [r for _, r in self._globs]

    def match(self, method: str, path: str) -> list[Rule]:
        """Rules whose method and path match this request (status not yet known)."""
        if not self._globs and not self._paths:
            return []
        if self._methods is not None and method not in self._methods:
            return []
        path = normalize_path(path)
        if path not in self._paths and not self._globs:
            return []
        exact = self._exact
        found = exact.get((method, path), []) + exact.get(("*", path), [])
        if method == "HEAD":
            found += exact.get(("GET", path), [])
        alias = "GET" if method == "HEAD" else method
        for pattern, rule in self._globs:
            if rule.method in ("*", method, alias) and pattern.match(path):
                found.append(rule)
        return found


def _glob_to_regex(glob: str) -> str:
    """``*`` matches within one path segment, ``**`` across segments, ``[...]`` one of a set."""
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
    ``environ`` is the WSGI environ, or the ASGI scope the app was given.
    Raises if the request did not pass through FixGuard, because an app that
    believes it is protected when it is not must find out at once.
    """
    if name not in SIGNALS:
        raise ValueError(f"fixguard.signal: unknown signal {name!r}; use one of login, logout, elevate")
    if ENVIRON_CONTEXT not in environ:
        raise RuntimeError(
            "fixguard.signal() was called for a request that FixGuard did not handle: "
            "wrap the WSGI app with FixGuard (app.wsgi_app = FixGuard(app.wsgi_app, ...)), or the ASGI "
            "app with fixguard.asgi.FixGuardMiddleware, and pass the request's environ or scope"
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
