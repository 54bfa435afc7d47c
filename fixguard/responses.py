"""The answers fixguard gives when it refuses a request, shaped for whoever asked.

A refusal is one of four: the session ended (401, a retired ID: the cookie is
cleared), a bearer token that is no longer valid (401), the session changed
while a slow request ran (409), the store is down (503). By default the body
is negotiated from ``Accept``: an HTML page for browsers,
``application/problem+json`` (RFC 9457) for clients that ask for JSON, plain
text otherwise (no ``Accept``, ``*/*``). ``reject_redirect`` sends an ended
session to the login page instead (303), except to clients that prefer JSON;
``on_reject`` lets the app answer itself.

What it trusts: nothing from the request but ``Accept``, read with bounded
work (at most :data:`MAX_ACCEPT` characters and :data:`MAX_MEDIA_RANGES` ranges).
What it guarantees whatever the app's callable does: the status is the
refusal's class of answer, fixguard's cookie is cleared exactly when the refusal
clears it, no app session cookie leaves, and no cache stores the answer.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

Headers = list[tuple[str, str]]
Response = tuple[str, Headers, bytes]
#: What ``on_reject`` returns: ``(status, headers, body)``, or None for fixguard's own answer.
HookAnswer = tuple[int | str, Iterable[tuple[str, str]], bytes | str] | None

MAX_ACCEPT = 2048
MAX_MEDIA_RANGES = 32
_JSON_TYPES = frozenset({"application/json", "application/problem+json"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

log = logging.getLogger("fixguard")


@dataclass(frozen=True, slots=True)
class Reason:
    """One kind of refusal: its status, a stable code for clients, and words for people."""

    status: int
    code: str
    title: str
    detail: str
    clears_cookie: bool = False
    redirects: bool = False  # reject_redirect applies


SESSION_ENDED = Reason(
    401, "session_ended", "Session ended", "This session has ended. Please sign in again.",
    clears_cookie=True, redirects=True,
)  # fmt: skip
TOKEN_INVALID = Reason(
    401, "token_invalid", "Token no longer valid", "This token is no longer valid. Please sign in again."
)
SESSION_CHANGED = Reason(
    409, "session_changed", "Session changed",
    "Your session changed while this request was running. Please retry.",
)  # fmt: skip
STORE_UNAVAILABLE = Reason(
    503, "store_unavailable", "Session service unavailable",
    "The session service is unavailable. Please try again shortly.",
)  # fmt: skip


@dataclass(frozen=True)
class Rejection:
    """What ``on_reject`` is told: why, and the request (read it, don't change it)."""

    status: int
    code: str
    title: str
    detail: str
    environ: Mapping[str, Any] = field(repr=False)


def preferred(accept: str | None) -> str:
    """``"html"``, ``"json"`` or ``"text"``: what this ``Accept`` header asks for.

    Only media types named outright count (``*/*`` and ``text/*`` ask for
    nothing in particular: plain text). The higher quality wins; at equal
    quality, the one listed first.
    """
    if not accept or len(accept) > MAX_ACCEPT:
        return "text"
    best, best_q = "text", 0.0
    for item in accept.split(",", MAX_MEDIA_RANGES)[:MAX_MEDIA_RANGES]:
        media, _, params = item.partition(";")
        media = media.strip().lower()
        kind = "json" if media in _JSON_TYPES or media.endswith("+json") else None
        if media in _HTML_TYPES:
            kind = "html"
        if kind is None:
            continue
        q = _quality(params)
        if q > best_q:
            best, best_q = kind, q
    return best


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def status_line(code: int) -> str:
    """``401`` → ``"401 Unauthorized"``."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


class Refusals:
    """Builds every refusal of one guard, from its settings.

    :param redirect: ``reject_redirect``: where an ended session is sent (303), or None.
    :param hook: ``on_reject``: the app's callable; it returns ``(status, headers, body)`` or
        None for the default. If it raises or returns something unusable, the default is
        sent and the error logged: a refusal is never lost.
    :param own_cookies: fixguard's cookie and the app's session cookies, which a hook may not set.
    """

    def __init__(
        self,
        redirect: str | None = None,
        hook: Callable[[Rejection], HookAnswer] | None = None,
        own_cookies: Iterable[str] = (),
    ) -> None:
        self.redirect = redirect
        self.hook = hook
        self.own_cookies = frozenset(name.lower() for name in own_cookies)
        #: Called with each refusal's Reason (metrics count them); one that raises is logged.
        self.listeners: list[Callable[[Reason], None]] = []

    def respond(
        self,
        reason: Reason,
        environ: Mapping[str, Any],
        clear: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """The refusal for ``reason``. ``clear`` is the Set-Cookie that clears fixguard's cookie."""
        for listener in self.listeners:
            try:
                listener(reason)
            except Exception:
                log.exception("a fixguard refusal listener raised; the refusal goes out")
        answer = self._from_hook(reason, environ) if self.hook is not None else None
        if answer is None:
            kind = preferred(environ.get("HTTP_ACCEPT"))
            if reason.redirects and self.redirect is not None and kind != "json":
                answer = _redirect(self.redirect)
            else:
                answer = _negotiated(reason, kind)
                answer[1].extend(headers)
        status, out, body = answer
        if reason.clears_cookie and clear is not None:
            out.append(("Set-Cookie", clear))
            _no_cache(out, 'no-cache="Set-Cookie"')
        return status, out, body

    def _from_hook(self, reason: Reason, environ: Mapping[str, Any]) -> Response | None:
        assert self.hook is not None
        rejection = Rejection(reason.status, reason.code, reason.title, reason.detail, environ)
        try:
            answer = self.hook(rejection)
            if answer is None:
                return None
            status, headers, body = answer
            return self._checked(reason, status, headers, body)
        except Exception:
            log.exception("fixguard on_reject raised or answered something unusable; sending the default")
            return None

    def _checked(
        self, reason: Reason, status: int | str, headers: Iterable[tuple[str, str]], body: Any
    ) -> Response:
        """The hook's answer, made safe: its status class, no session cookie, no cache."""
        line = status_line(status) if isinstance(status, int) else str(status)
        code = int(line[:3]) if line[:3].isdigit() and line[3:4] == " " else 0
        if not (code // 100 == reason.status // 100 or (reason.redirects and code in (302, 303, 307))):
            raise ValueError(f"on_reject answered {line!r} to a {reason.status} refusal")
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        out: Headers = []
        for name, value in headers:
            lname = name.lower()
            if lname == "content-length":
                continue
            if lname == "set-cookie" and value.partition("=")[0].strip().lower() in self.own_cookies:
                continue  # the jar's cookies and fixguard's own are fixguard's business
            out.append((str(name), str(value)))
        out.append(("Content-Length", str(len(data))))
        _no_cache(out, "no-store")
        return line, out, data


def _negotiated(reason: Reason, kind: str) -> Response:
    if kind == "json":
        problem = {
            "type": "about:blank",
            "title": HTTPStatus(reason.status).phrase,
            "status": reason.status,
            "detail": reason.detail,
            "code": reason.code,
        }
        body = json.dumps(problem).encode("utf-8")
        content_type = "application/problem+json"
    elif kind == "html":
        title, detail = html.escape(reason.title), html.escape(reason.detail)
        body = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{detail}</title></head>\n<body><h1>{title}</h1>\n<p>{detail}</p></body></html>\n"
        ).encode()
        content_type = "text/html; charset=utf-8"
    else:
        body = (reason.detail + "\n").encode("utf-8")
        content_type = "text/plain; charset=utf-8"
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Vary", "Accept"),
    ]
    return status_line(reason.status), headers, body


def _redirect(target: str) -> Response:
    body = b""
    headers = [("Location", target), ("Content-Length", "0"), ("Cache-Control", "no-store")]
    return status_line(303), headers, body


def _no_cache(headers: Headers, directive: str) -> None:
    """Add ``directive`` to the Cache-Control header (merged into one that exists)."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == "cache-control":
            if directive.lower() not in value.lower():
                headers[i] = (name, f"{value}, {directive}" if value.strip() else directive)
            return
    headers.append(("Cache-Control", directive))
