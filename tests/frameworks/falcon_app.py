"""Falcon (WSGI), with sessions done the way Falcon leaves them to you: a middleware.

``SessionMiddleware`` keys a server-side dict by a random ``falcon_sid``
cookie, issued on first use and kept for the life of the session, login
included: the bare app is vulnerable to fixation. A JSON API: ``GET /``,
``POST /session`` (JSON credentials: log in), ``DELETE /session`` (log out),
``GET /profile``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import falcon

from . import USERS

COOKIE = "falcon_sid"


class SessionMiddleware:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        sid = req.cookies.get(COOKIE)
        req.context.new_session = sid is None or sid not in self.sessions
        if req.context.new_session:
            sid = secrets.token_urlsafe(24)
        assert sid is not None
        req.context.sid = sid
        req.context.session = self.sessions.setdefault(sid, {})
        req.context.end_session = False

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if req.context.end_session:
            self.sessions.pop(req.context.sid, None)
            resp.unset_cookie(COOKIE, path="/")
        elif req.context.session and req.context.new_session:
            resp.set_cookie(COOKIE, req.context.sid, path="/", http_only=True)
        elif not req.context.session and req.context.new_session:
            self.sessions.pop(req.context.sid, None)


class Index:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = req.context.session
        data["visits"] = data.get("visits", 0) + 1
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = f"visits={data['visits']} user={data.get('user', 'anonymous')}"


class Session:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        name = str(body.get("username", ""))
        if not hmac.compare_digest(USERS.get(name, "\0"), str(body.get("password", ""))):
            raise falcon.HTTPUnauthorized(title="bad credentials")
        req.context.session["user"] = name  # same falcon_sid as before login
        resp.media = {"user": name}

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.end_session = True
        resp.media = {"user": None}


class Profile:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.session.get("user")
        if user is None:
            raise falcon.HTTPUnauthorized(title="not logged in")
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = f"profile of {user}"


def create_app() -> falcon.App:
    app = falcon.App(middleware=[SessionMiddleware()])
    app.resp_options.secure_cookies_by_default = False  # plain-http development server
    app.add_route("/", Index())
    app.add_route("/session", Session())
    app.add_route("/profile", Profile())
    return app
