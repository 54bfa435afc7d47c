"""Pyramid, with its own session factory and a session-based security policy.

``SignedCookieSessionFactory`` keeps the session in a signed cookie named
``session``; the security policy stores the user id in it through Pyramid's
``SessionAuthenticationHelper``. The contents travel in the cookie, so a
pre-login cookie replayed after login carries no user: not vulnerable to
fixation when bare. Routes: ``GET /``, ``POST /login`` (form), ``GET /profile``,
``POST /logout``.
"""

from __future__ import annotations

import hmac
from typing import Any

from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.router import Router
from pyramid.security import forget, remember
from pyramid.session import SignedCookieSessionFactory

from . import APP_SECRET, USERS


class SessionSecurityPolicy:
    def __init__(self) -> None:
        self.helper = SessionAuthenticationHelper()

    def identity(self, request: Request) -> str | None:
        userid = self.helper.authenticated_userid(request)
        return userid if userid in USERS else None

    def authenticated_userid(self, request: Request) -> str | None:
        return self.identity(request)

    def permits(self, request: Request, context: Any, permission: str) -> bool:
        return self.identity(request) is not None

    def remember(self, request: Request, userid: str, **kw: Any) -> list[tuple[str, str]]:
        return self.helper.remember(request, userid, **kw)

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        return self.helper.forget(request, **kw)


def index(request: Request) -> Response:
    request.session["visits"] = request.session.get("visits", 0) + 1
    who = request.authenticated_userid or "anonymous"
    return Response(f"visits={request.session['visits']} user={who}", content_type="text/plain")


def login(request: Request) -> Response:
    name = request.POST.get("username", "")
    if not hmac.compare_digest(USERS.get(name, "\0"), request.POST.get("password", "")):
        return Response("bad credentials", status=401, content_type="text/plain")
    headers = remember(request, name)
    return Response(f"welcome {name}", headers=headers, content_type="text/plain")


def profile(request: Request) -> Response:
    user = request.authenticated_userid
    if user is None:
        return Response("not logged in", status=401, content_type="text/plain")
    return Response(f"profile of {user}", content_type="text/plain")


def logout(request: Request) -> Response:
    request.session.invalidate()
    headers = forget(request)
    return Response("bye", headers=headers, content_type="text/plain")


def create_app() -> Router:
    with Configurator() as config:
        config.set_session_factory(SignedCookieSessionFactory(APP_SECRET, httponly=True))
        config.set_security_policy(SessionSecurityPolicy())
        config.add_route("index", "/")
        config.add_route("login", "/login", request_method="POST")
        config.add_route("profile", "/profile")
        config.add_route("logout", "/logout", request_method="POST")
        config.add_view(index, route_name="index")
        config.add_view(login, route_name="login")
        config.add_view(profile, route_name="profile")
        config.add_view(logout, route_name="logout")
        return config.make_wsgi_app()
