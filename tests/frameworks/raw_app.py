"""A hand-written WSGI app: server-side sessions keyed by an ``SID`` cookie.

Written the way small WSGI apps often are: the ``SID`` cookie is a random key
into a dict, issued on the first visit and kept for the life of the session,
login included. So whoever holds an ``SID`` issued before login holds the
logged-in session after it: vulnerable to fixation when bare.

Routes: ``GET /``, ``POST /auth/login`` (form), ``GET /profile``,
``POST /auth/logout``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from . import USERS


class RawApp:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        morsel = cookies.get("SID")
        sid = morsel.value if morsel is not None else None
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if sid is None or sid not in self.sessions:
            sid = secrets.token_urlsafe(24)
            self.sessions[sid] = {}
            headers.append(("Set-Cookie", f"SID={sid}; Path=/; HttpOnly"))
        session = self.sessions[sid]
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")

        if method == "GET" and path == "/":
            session["visits"] = session.get("visits", 0) + 1
            return _answer(start_response, "200 OK", headers, _state(session))
        if method == "POST" and path == "/auth/login":
            form = _form(environ)
            user = form.get("username", "")
            if not hmac.compare_digest(USERS.get(user, "\0"), form.get("password", "")):
                return _answer(start_response, "401 Unauthorized", headers, "bad credentials")
            session["user"] = user  # the same SID, now logged in
            return _answer(start_response, "200 OK", headers, f"welcome {user}")
        if method == "GET" and path == "/profile":
            user = session.get("user")
            if user is None:
                return _answer(start_response, "401 Unauthorized", headers, "not logged in")
            return _answer(start_response, "200 OK", headers, f"profile of {user}")
        if method == "POST" and path == "/auth/logout":
            self.sessions.pop(sid, None)
            headers.append(("Set-Cookie", "SID=; Path=/; Max-Age=0"))
            return _answer(start_response, "200 OK", headers, "bye")
        return _answer(start_response, "404 Not Found", headers, "not found")


def _state(session: dict[str, Any]) -> str:
    return f"visits={session.get('visits', 0)} user={session.get('user', 'anonymous')}"


def _form(environ: dict[str, Any]) -> dict[str, str]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode() if size else ""
    return {k: v[0] for k, v in parse_qs(body).items()}


def _answer(start_response: Any, status: str, headers: list[tuple[str, str]], body: str) -> list[bytes]:
    start_response(status, headers)
    return [body.encode()]


def create_app() -> RawApp:
    return RawApp()
