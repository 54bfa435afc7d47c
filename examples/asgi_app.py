"""A Starlette app with the four seed shapes of session fixation, for the ASGI middleware.

The flaws (each the ASGI twin of a WSGI example app)
----------------------------------------------------
* **An HMAC-signed cookie echoed at login.** ``GET /`` hands out ``sid`` as
  ``<id>.<hmac>``; ``POST /login`` (a form) trusts any correctly signed ``sid``
  and binds the user to it. An attacker plants his own ``sid``, the victim logs
  in, and his copy is now hers (``GET /profile``).
* **Basic Auth with a server-side session.** ``POST /basic/login`` checks
  ``Authorization: Basic`` and binds the user to the ``session`` cookie the
  client came with (``GET /basic/profile``).
* **A bearer token echoed at login.** ``POST /token/login`` (JSON) keeps the
  bearer token the request carried and binds it to the user (``GET /token/me``).
* **A JWT that is never revoked.** ``POST /jwt/login`` issues an HS256 JWT;
  ``POST /logout`` cannot end it, so a copy works until it expires (``GET /jwt/me``).

``GET /slow-profile`` reads the session after a pause: a request that is
inside the app while the victim logs in (the replay racing the login).

:func:`protect` wraps the app in :class:`fixguard.asgi.FixGuardMiddleware`
without touching a view. ``create_protected_app()`` reads ``FIXGUARD_*``
(for ``uvicorn --factory examples.asgi_app:create_protected_app``).
Users: ``alice`` / ``secret`` and ``bob`` / ``hunter2``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fixguard.asgi import FixGuardMiddleware

HMAC_KEY = secrets.token_bytes(32)
JWT_KEY = secrets.token_bytes(32)
USERS = {"alice": "secret", "bob": "hunter2"}
#: Server-side state, module-level so tests can look inside: sid -> user, session -> user, token -> user.
SESSIONS: dict[str, dict[str, Any]] = {}
TOKENS: dict[str, str] = {}
#: What this app protects with fixguard: its cookies, login and logout endpoints, token field.
APP_COOKIES = ("sid", "session")
LOGIN = ("POST /login", "POST /basic/login", "POST /token/login", "POST /jwt/login")
LOGOUT = ("POST /logout",)
TOKEN_FIELDS = ("access_token",)


def reset() -> None:
    SESSIONS.clear()
    TOKENS.clear()


def sign(session_id: str) -> str:
    mac = hmac.new(HMAC_KEY, session_id.encode(), hashlib.sha256).hexdigest()
    return f"{session_id}.{mac}"


def verify(value: str | None) -> str | None:
    """The session ID in a correctly signed ``sid``, else None."""
    if not value or "." not in value:
        return None
    session_id, mac = value.rsplit(".", 1)
    expected = hmac.new(HMAC_KEY, session_id.encode(), hashlib.sha256).hexdigest()
    return session_id if hmac.compare_digest(expected, mac) else None


def user_of_sid(request: Request) -> str | None:
    sid = verify(request.cookies.get("sid"))
    return SESSIONS.get(sid, {}).get("user") if sid else None


def who(user: str | None) -> Response:
    if user is None:
        return PlainTextResponse("not logged in", status_code=401)
    return PlainTextResponse(f"user={user}")


async def home(request: Request) -> Response:
    sid = verify(request.cookies.get("sid"))
    response = PlainTextResponse(f"hello {user_of_sid(request) or 'anonymous'}")
    if sid is None or sid not in SESSIONS:
        sid = secrets.token_urlsafe(16)
        SESSIONS[sid] = {}
        response.set_cookie("sid", sign(sid), httponly=True)
    return response


async def login(request: Request) -> Response:
    form = await request.form()
    user, password = str(form.get("username", "")), str(form.get("password", ""))
    if USERS.get(user) != password:
        return PlainTextResponse("bad credentials", status_code=401)
    sid = verify(request.cookies.get("sid")) or secrets.token_urlsafe(16)  # the flaw: kept as presented
    SESSIONS[sid] = {"user": user}
    response = PlainTextResponse("welcome")
    response.set_cookie("sid", sign(sid), httponly=True)
    return response


async def profile(request: Request) -> Response:
    return who(user_of_sid(request))


async def slow_profile(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("delay", "0.3")))
    return who(user_of_sid(request))


def basic_user(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if USERS.get(user) == password else None


async def basic_login(request: Request) -> Response:
    user = basic_user(request)
    if user is None:
        return PlainTextResponse("who are you?", status_code=401, headers={"WWW-Authenticate": "Basic"})
    session = request.cookies.get("session") or secrets.token_urlsafe(16)  # the flaw: kept as presented
    SESSIONS[session] = {"user": user}
    response = PlainTextResponse("welcome")
    response.set_cookie("session", session, httponly=True)
    return response


async def basic_profile(request: Request) -> Response:
    session = request.cookies.get("session")
    return who(SESSIONS.get(session, {}).get("user") if session else None)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() or None if header.lower().startswith("bearer ") else None


async def json_credentials(request: Request) -> str | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    user = str(body.get("username", "")) if isinstance(body, dict) else ""
    return user if isinstance(body, dict) and USERS.get(user) == body.get("password") else None


async def token_login(request: Request) -> Response:
    user = await json_credentials(request)
    if user is None:
        return JSONResponse({"error": "bad credentials"}, status_code=401)
    token = bearer(request) or secrets.token_urlsafe(24)  # the flaw: the client's token is kept
    TOKENS[token] = user
    return JSONResponse({"access_token": token, "user": user})


async def token_me(request: Request) -> Response:
    token = bearer(request)
    user = TOKENS.get(token) if token else None
    return JSONResponse({"user": user}, status_code=200 if user else 401)


async def jwt_login(request: Request) -> Response:
    user = await json_credentials(request)
    if user is None:
        return JSONResponse({"error": "bad credentials"}, status_code=401)
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, JWT_KEY, algorithm="HS256")
    return JSONResponse({"access_token": token, "user": user})


async def jwt_me(request: Request) -> Response:
    token = bearer(request)
    try:
        claims = jwt.decode(token or "", JWT_KEY, algorithms=["HS256"])
    except jwt.PyJWTError:
        return JSONResponse({"user": None}, status_code=401)
    return JSONResponse({"user": claims["sub"]})


async def logout(request: Request) -> Response:
    """Ends the cookie sessions; a JWT cannot be ended at all (the flaw)."""
    for name in ("sid", "session"):
        value = request.cookies.get(name)
        SESSIONS.pop((verify(value) if name == "sid" else value) or "", None)
    response = PlainTextResponse("bye")
    response.delete_cookie("sid")
    response.delete_cookie("session")
    return response


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/profile", profile),
            Route("/slow-profile", slow_profile),
            Route("/basic/login", basic_login, methods=["POST"]),
            Route("/basic/profile", basic_profile),
            Route("/token/login", token_login, methods=["POST"]),
            Route("/token/me", token_me),
            Route("/jwt/login", jwt_login, methods=["POST"]),
            Route("/jwt/me", jwt_me),
            Route("/logout", logout, methods=["POST"]),
        ]
    )


def protect(app: Any, **options: Any) -> FixGuardMiddleware:
    """The app behind fixguard, with its cookies, logins and token field named."""
    options.setdefault("app_cookies", APP_COOKIES)
    options.setdefault("login", LOGIN)
    options.setdefault("logout", LOGOUT)
    options.setdefault("token_fields", TOKEN_FIELDS)
    return FixGuardMiddleware(app, **options)


def create_protected_app() -> FixGuardMiddleware:
    """For a server: ``FIXGUARD_*`` configure fixguard (a secret key at least; Redis for workers)."""
    overrides: dict[str, Any] = {}
    if "FIXGUARD_APP_COOKIES" not in os.environ:
        overrides["app_cookies"] = APP_COOKIES
    if "FIXGUARD_LOGIN" not in os.environ:
        overrides.update(login=LOGIN, logout=LOGOUT, token_fields=TOKEN_FIELDS)
    return FixGuardMiddleware.from_env(create_app(), **overrides)
