"""Bottle, with its own cookie handling: a *signed* ``sid`` cookie keying server-side sessions.

``response.set_cookie(..., secret=...)`` / ``request.get_cookie(..., secret=...)``
(Bottle's signed cookies, serialised through ``SimpleCookie``, which quotes the
value) carry a random session ID into a dict. The signature proves the ID was
issued by the app, not that it was issued *to this user after login*: the
ID survives login, so the bare app is vulnerable to fixation.

Routes: ``GET /``, ``POST /login`` (form), ``GET /profile``, ``POST /logout``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from bottle import Bottle, request, response

from . import APP_SECRET, USERS


def create_app() -> Bottle:
    app = Bottle()
    sessions: dict[str, dict[str, Any]] = {}

    def session() -> tuple[str, dict[str, Any]]:
        sid = request.get_cookie("sid", secret=APP_SECRET)
        if not isinstance(sid, str) or sid not in sessions:
            sid = secrets.token_urlsafe(24)
            sessions[sid] = {}
            response.set_cookie("sid", sid, secret=APP_SECRET, path="/", httponly=True)
        return sid, sessions[sid]

    @app.get("/")
    def index() -> str:
        _, data = session()
        data["visits"] = data.get("visits", 0) + 1
        return f"visits={data['visits']} user={data.get('user', 'anonymous')}"

    @app.post("/login")
    def login() -> str:
        _, data = session()
        name = request.forms.get("username", "")
        if not hmac.compare_digest(USERS.get(name, "\0"), request.forms.get("password", "")):
            response.status = 401
            return "bad credentials"
        data["user"] = name  # same sid as before login
        return f"welcome {name}"

    @app.get("/profile")
    def profile() -> str:
        _, data = session()
        if "user" not in data:
            response.status = 401
            return "not logged in"
        return f"profile of {data['user']}"

    @app.post("/logout")
    def logout() -> str:
        sid, _ = session()
        sessions.pop(sid, None)
        response.delete_cookie("sid", path="/")
        return "bye"

    return app
