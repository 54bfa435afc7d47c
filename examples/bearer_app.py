"""A Flask API whose bearer tokens can be fixed, replayed and outlive logout.

The flaws
---------
This app authenticates API clients with ``Authorization: Bearer <token>`` and
gets tokens wrong in the three ways the bearer-token shape of session fixation
takes:

**It echoes the client's token.** ``POST /login`` checks the password and then,
if the request already carried a bearer token, *keeps it*: it binds that token
to the user in ``TOKENS`` and returns it as ``{"access_token": ...}``. Only a
client that presented nothing gets a freshly minted one. So an attacker
chooses any token he likes, gets the victim's client to send it on its login
(an SPA that keeps its token in ``localStorage`` and sends it everywhere, a
poisoned configuration, a shared machine), waits for her to log in, and then
presents the same token at ``GET /me``: he is the victim.

**Its JWTs never die.** ``POST /jwt/login`` issues a signed JWT (PyJWT, HS256,
one hour). The signature proves the app issued it, not that it is still
wanted: logging in again issues a new JWT but leaves every older one valid,
and ``POST /logout`` cannot revoke one at all. A JWT copied from a shared
machine before the victim logged out, or before she logged in again, keeps
opening her account until it expires.

**Its cookie token is echoed too.** ``POST /cookie/login`` is the same login
for a browser: the token travels in an ``api_token`` cookie, and a client that
arrives with one (planted from a sibling subdomain, say) keeps it.

Two more: ``POST /elevate`` (second factor) raises the privileges of the token
the client presented instead of issuing a new one, so a planted token becomes
an elevated one; and the web UI's session (Flask's signed ``session`` cookie,
set by ``POST /login`` next to the token) is a second, unsynchronised channel:
``POST /logout`` clears the caller's copy, but a copy taken earlier stays
valid, since a signed cookie is valid wherever it is replayed.

What fixguard changes
---------------------
:func:`protect` wraps the app in fixguard without touching a view. The token
in a login or elevate response is replaced by a fixguard token (``fgt_…``)
and the app's own token stays server-side; on the way in fixguard translates
``fgt_…`` back into the app's token and drops any bearer token it did not
mint, so the token the attacker chose never reaches the app. Whatever token
came in on a login is burned, the one from before an elevate is refused after
it, and logout revokes the fixguard token, which also retires the JWT behind
it as far as any client is concerned. ``api_token`` and ``session`` are kept
in fixguard's cookie vault, so the browser never holds either.

The app names the user of a login with a ``Fixguard-Subject`` response header
(harmless without fixguard), so ``store.revoke("alice")`` can end all of
alice's tokens and cookies at once, e.g. after a password change.

Running it
----------
From a source checkout, with Flask and PyJWT installed
(``pip install -e '.[examples]'``)::

    flask --app examples.bearer_app run                       # vulnerable
    export FIXGUARD_SECRET_KEY=...                            # 32+ random bytes
    FIXGUARD_SECURE=false flask --app 'examples.bearer_app:create_protected_app()' run
    curl -s -X POST -H 'Content-Type: application/json' \\
         -d '{"username": "alice", "password": "secret"}' http://127.0.0.1:5000/login

Users: ``alice`` / ``secret`` and ``bob`` / ``hunter2``; the second factor is
``MFA_CODE``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode

import jwt
from flask import Flask, Response, jsonify, request, session

from examples import protect_from_env

USERS = {"alice": "secret", "bob": "hunter2"}

#: The one-time code ``POST /elevate`` accepts (a stand-in for a real TOTP check).
MFA_CODE = "123456"

#: Server-side token bindings: opaque token -> ``{"user": ..., "mfa": bool}``.
#: Used by ``/login``, ``/cookie/login`` and ``/elevate``; JWTs need no entry.
TOKENS: dict[str, dict[str, Any]] = {}

#: The app's own JWT signing key and Flask session key: random per process.
JWT_KEY = secrets.token_bytes(32)
FLASK_KEY = secrets.token_bytes(32)
JWT_LIFETIME = 3600  # seconds

#: The cookie ``/cookie/login`` puts the token in.
COOKIE = "api_token"

#: Login endpoints, as fixguard rules.
LOGIN_RULES = ("POST /login", "POST /jwt/login", "POST /cookie/login")


def reset() -> None:
    """Forget every opaque token (used between tests and demo runs). JWTs cannot be forgotten."""
    TOKENS.clear()


def presented_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` request header, if any.

    Read the way Django REST framework's ``TokenAuthentication`` reads it:
    two whitespace-separated words, the first one ``bearer`` in any case.
    """
    words = request.headers.get("Authorization", "").split()
    if len(words) != 2 or words[0].lower() != "bearer":
        return None
    return words[1]


def _credentials() -> str | None:
    """The username if the JSON (or form) body carries valid credentials."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        data = request.form
    username = str(data.get("username", ""))
    expected = USERS.get(username)
    if expected is None or not hmac.compare_digest(expected, str(data.get("password", ""))):
        return None
    return username


def _error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _logged_in(body: dict[str, Any], user: str) -> Response:
    response = jsonify(body)
    response.headers["Fixguard-Subject"] = user  # tells fixguard whose session this is
    return response


def issue_jwt(user: str, key: bytes | None = None) -> str:
    """A one-hour HS256 JWT for ``user``, signed with the app's key."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + JWT_LIFETIME, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, key or JWT_KEY, algorithm="HS256")


def create_app(
    *,
    tokens: MutableMapping[str, dict[str, Any]] | None = None,
    jwt_key: bytes | None = None,
    secret_key: str | bytes | None = None,
) -> Flask:
    """The vulnerable API, unprotected.

    ``tokens`` (default: :data:`TOKENS`), ``jwt_key`` (default: :data:`JWT_KEY`)
    and ``secret_key`` (Flask's, default: :data:`FLASK_KEY`) let several worker
    processes share one state; the defaults are per process.
    """
    bound: MutableMapping[str, dict[str, Any]] = TOKENS if tokens is None else tokens
    signing_key = jwt_key or JWT_KEY
    app = Flask(__name__)
    app.secret_key = secret_key or FLASK_KEY

    @app.get("/")
    def index() -> Response:
        """The web UI's home: every visitor gets a session (it counts visits)."""
        session["visits"] = session.get("visits", 0) + 1
        return jsonify(user=session.get("user"), visits=session["visits"])

    @app.post("/login")
    def login() -> Response:
        user = _credentials()
        if user is None:
            return _error("invalid credentials", 401)
        # THE BUG: a token the client arrived with is kept and bound to the user.
        # Whoever chose it (an attacker who planted it) is now logged in too.
        token = presented_token() or secrets.token_urlsafe(32)
        bound[token] = {"user": user, "mfa": False}
        session["user"] = user  # the web UI's session, a second channel
        if request.args.get("format") == "form":  # the old OAuth style some clients still ask for
            body = urlencode({"access_token": token, "token_type": "bearer"})
            response = Response(body, mimetype="application/x-www-form-urlencoded")
            response.headers["Fixguard-Subject"] = user
            return response
        return _logged_in({"access_token": token, "token_type": "Bearer", "user": user}, user)

    @app.post("/jwt/login")
    def jwt_login() -> Response:
        user = _credentials()
        if user is None:
            return _error("invalid credentials", 401)
        # THE BUG: a new JWT is issued, but no earlier one is (or can be) revoked.
        return _logged_in({"access_token": issue_jwt(user, signing_key), "token_type": "Bearer"}, user)

    @app.post("/cookie/login")
    def cookie_login() -> Response:
        user = _credentials()
        if user is None:
            return _error("invalid credentials", 401)
        # THE BUG: the client's api_token cookie, if it sent one, is kept.
        token = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        bound[token] = {"user": user, "mfa": False}
        response = _logged_in({"user": user}, user)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Lax")
        return response

    @app.post("/elevate")
    def elevate() -> Response:
        token = presented_token()
        if token is None or token not in bound:
            return _error("missing token" if token is None else "invalid token", 401)
        data = request.get_json(silent=True) or {}
        if not hmac.compare_digest(str(data.get("code", "")), MFA_CODE):
            return _error("wrong code", 403)
        # THE BUG: the privilege is raised on the token the client already had.
        bound[token] = {**bound[token], "mfa": True}
        return jsonify(access_token=token, token_type="Bearer", mfa=True)

    @app.get("/me")
    def me() -> Response:
        token = presented_token()
        if token is None:
            user = session.get("user")
            if user is None:
                return _error("missing token", 401)
            return jsonify(user=user, via="session", mfa=False)
        if token in bound:
            return jsonify(user=bound[token]["user"], via="token", mfa=bound[token]["mfa"])
        try:
            claims = jwt.decode(token, signing_key, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return _error("invalid token", 401)
        return jsonify(user=claims["sub"], via="jwt", mfa=False)

    @app.get("/cookie/me")
    def cookie_me() -> Response:
        token = request.cookies.get(COOKIE)
        if token is None:
            return _error("missing token", 401)
        if token not in bound:
            return _error("invalid token", 401)
        return jsonify(user=bound[token]["user"], via="cookie", mfa=bound[token]["mfa"])

    @app.post("/logout")
    def logout() -> Response:
        # Opaque tokens are unbound; a JWT stays valid until it expires (THE BUG),
        # and any earlier copy of the signed session cookie stays valid too.
        for token in (presented_token(), request.cookies.get(COOKIE)):
            if token is not None:
                bound.pop(token, None)
        session.clear()
        response = jsonify(status="logged out")
        response.delete_cookie(COOKIE, httponly=True, samesite="Lax")
        return response

    return app


def settings(app: Flask) -> dict[str, Any]:
    """This API's FixGuard settings: session cookies, login/logout/elevate routes, token fields."""
    return {
        "app_cookies": (COOKIE, app.config["SESSION_COOKIE_NAME"]),
        "login": LOGIN_RULES,
        "logout": ("POST /logout",),
        "elevate": ("POST /elevate",),
        "token_fields": ("access_token",),
    }


def protect(app: Flask, *, secret_key: str | bytes, secure: bool = True, **options: Any) -> Flask:
    """Wrap ``app`` in fixguard, configured for this app; returns ``app``.

    ``access_token`` in login and elevate responses becomes a fixguard token;
    the three login endpoints rotate, ``POST /elevate`` rotates again and
    ``POST /logout`` ends the session; ``api_token`` and Flask's ``session``
    are kept in the vault. Keyword arguments (``on_event``, ``store``,
    ``token_passthrough``, ...) go to :class:`FixGuard` and override these.
    """
    from fixguard import FixGuard

    app.wsgi_app = FixGuard(  # type: ignore[method-assign]
        app.wsgi_app, secret_key=secret_key, secure=secure, **{**settings(app), **options}
    )
    return app


def create_protected_app() -> Flask:
    """The same API behind fixguard, configured by ``FIXGUARD_*`` variables.

    ``FIXGUARD_SECRET_KEY`` is required; ``FIXGUARD_SECURE=false`` drops the
    ``Secure`` cookie flag for plain-http local runs.
    """
    app = create_app()
    return protect_from_env(app, settings(app))


app = create_app()
