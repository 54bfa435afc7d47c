"""Small WSGI apps the tests wrap: raw WSGI, no framework, behaviour chosen per path.

``VulnerableApp`` keeps server-side sessions keyed by the ``session`` cookie and,
like the apps fixguard exists for, never changes that cookie at login: it
writes the user into whatever session the request carried.
"""

from __future__ import annotations

import http.cookiejar
import itertools
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from webtest import TestApp
from werkzeug.http import parse_cookie

import fixguard

SECRET = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_SECRET = "other-key-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _form(environ: dict[str, Any]) -> dict[str, str]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode() if size else ""
    return {k: v[0] for k, v in parse_qs(body).items()}


class VulnerableApp:
    """Server-side sessions that survive login: the classic fixation bug."""

    def __init__(self, login_delay: float = 0.0, read_delay: float = 0.0) -> None:
        self.sessions: dict[str, dict[str, str]] = {}
        self.counter = itertools.count(1)
        self.login_delay = login_delay
        self.read_delay = read_delay
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        method = environ["REQUEST_METHOD"]
        raw = environ.get("HTTP_COOKIE", "")
        cookies = parse_cookie(raw)
        with self.lock:
            self.seen.append(
                {"path": path, "cookie": raw, "session": environ.get("fixguard.session")}
            )
        sid = cookies.get("session")
        headers = [("Content-Type", "text/plain")]
        if sid is None or sid not in self.sessions:
            sid = f"s{next(self.counter)}"
            self.sessions[sid] = {}
            headers.append(("Set-Cookie", f"session={sid}; Path=/; HttpOnly"))
        data = self.sessions[sid]
        if path == "/login" and method == "POST":
            form = _form(environ)
            if form.get("password") != "secret":
                start_response("401 Unauthorized", headers)
                return [b"bad credentials"]
            data["user"] = form.get("user", "alice")  # bug: same sid, now authenticated
            time.sleep(self.login_delay)
            start_response("200 OK", headers)
            return [b"logged in"]
        if path == "/logout" and method == "POST":
            self.sessions.pop(sid, None)
            headers.append(("Set-Cookie", "session=; Max-Age=0; Path=/"))
            start_response("200 OK", headers)
            return [b"bye"]
        if path == "/profile":
            time.sleep(self.read_delay)
            user = self.sessions.get(sid, {}).get("user")
            if user is None:
                start_response("401 Unauthorized", headers)
                return [b"anonymous"]
            start_response("200 OK", headers)
            return [f"user={user}".encode()]
        if path == "/header-login":
            data["user"] = "alice"
            headers += [("Fixguard-Event", "login"), ("Fixguard-Subject", "alice")]
            start_response("200 OK", headers)
            return [b"logged in by header"]
        if path == "/call-login":
            data["user"] = "alice"
            fixguard.signal(environ, "login", subject="alice")
            start_response("200 OK", headers)
            return [b"logged in by call"]
        if path == "/elevate":
            data["mfa"] = "yes"
            start_response("200 OK", headers)
            return [b"elevated"]
        start_response("200 OK", headers)
        return [f"visits sid={sid}".encode()]


def echo_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answers with the Cookie header it received; sets nothing."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("HTTP_COOKIE", "").encode("latin-1")]


def guard(app: Any, **kwargs: Any) -> fixguard.FixGuard:
    """FixGuard with test defaults: plain http, the test secret."""
    kwargs.setdefault("secret_key", SECRET)
    kwargs.setdefault("secure", False)
    return fixguard.FixGuard(app, **kwargs)


def fg_cookie(res: Any, name: str = "fixguard") -> str | None:
    """The value fixguard set in this response (None if it set none)."""
    for header in res.headers.getall("Set-Cookie"):
        if header.startswith(name + "="):
            return str(header.split(";", 1)[0].split("=", 1)[1])
    return None


def plant(client: TestApp, name: str, value: str) -> None:
    """Put ``name=value`` in the client's jar exactly as given, as if the site had set it.

    ``TestApp.set_cookie`` would wrap the value in double quotes; this stores
    it verbatim, for the host the client talks to, so a later ``Set-Cookie``
    from the site replaces it as it would in a browser.
    """
    client.cookiejar.set_cookie(
        http.cookiejar.Cookie(
            version=0, name=name, value=value, port=None, port_specified=False,
            domain="localhost.local",  # how http.cookiejar files the host "localhost"
            domain_specified=False, domain_initial_dot=False, path="/", path_specified=True,
            secure=False, expires=None, discard=True, comment=None, comment_url=None, rest={},
        )
    )  # fmt: skip
    assert client.cookies[name] == value
