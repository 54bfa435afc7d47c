"""A Flask app whose HMAC-signed session cookie can be fixed by an attacker.

The flaw
--------
The app keeps its sessions server-side, in ``SESSIONS``, keyed by a random ID.
The browser holds that ID in a cookie named ``sid`` as ``<id>.<hmac>``. The
HMAC makes the cookie impossible to forge, and that is where the trouble
starts: the login view trusts any cookie whose signature checks out, so it
keeps the ID the client arrived with and binds the user to it.

A signature says "this server issued this ID". It does not say "to this
browser" or "after this login". So an attacker can:

1. visit ``GET /`` and be handed a perfectly valid ``sid``;
2. plant that cookie in the victim's browser (a sibling subdomain, a cookie
   injection bug, a shared machine...);
3. wait for the victim to log in with the form of ``GET /login`` (it posts to
   ``POST /login``): the app echoes back the very same ``sid`` and binds it
   to the victim;
4. replay the ``sid`` he kept and be the victim at ``GET /profile``.

The fix inside the app would be to mint a fresh ID at login and discard the
old one. :func:`protect` instead wraps the app in fixguard, which does this
for it without touching a line of the views: the browser never sees ``sid``
at all, and the fixguard ID it does hold is replaced at login.

Running it
----------
From a source checkout, with Flask installed (``pip install -e '.[examples]'``)::

    flask --app examples.signed_cookie_app run           # vulnerable
    export FIXGUARD_SECRET_KEY=...                       # 32+ random bytes
    FIXGUARD_SECURE=false flask --app 'examples.signed_cookie_app:create_protected_app()' run

Users: ``alice`` / ``secret`` and ``bob`` / ``hunter2``. ``fixguard demo``
plays the whole attack against this app, bare and protected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Flask, Response, request

from examples import protect_from_env

#: The app's own signing key. Random per process: this is a demo, and the
#: signatures only have to survive as long as ``SESSIONS`` does.
HMAC_KEY = secrets.token_bytes(32)

#: Server-side session records: raw session ID -> data (``{"user": ...}`` once
#: logged in). Module-level on purpose, so tests and the demo can look inside.
SESSIONS: dict[str, dict[str, Any]] = {}

USERS = {"alice": "secret", "bob": "hunter2"}

COOKIE = "sid"

#: The sign-in page a browser shows: a plain form that posts to ``/login``.
LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1>
<form method="post" action="/login">
<p><label>User <input name="username" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><button type="submit">Sign in</button></p>
</form></body></html>
"""


def reset() -> None:
    """Forget every session (used between tests and demo runs)."""
    SESSIONS.clear()


def sign(session_id: str) -> str:
    """``<id>.<hex hmac>``: the value the app puts in its ``sid`` cookie."""
    mac = hmac.new(HMAC_KEY, session_id.encode(), hashlib.sha256).hexdigest()
    return f"{session_id}.{mac}"


def verify(cookie_value: str | None) -> str | None:
    """The session ID inside a correctly signed cookie value, else None."""
    if not cookie_value or "." not in cookie_value:
        return None
    session_id, mac = cookie_value.rsplit(".", 1)
    expected = hmac.new(HMAC_KEY, session_id.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return None
    return session_id


def _current() -> tuple[str | None, dict[str, Any] | None]:
    session_id = verify(request.cookies.get(COOKIE))
    if session_id is None:
        return None, None
    return session_id, SESSIONS.get(session_id)


def _new_session(response: Response) -> str:
    session_id = secrets.token_urlsafe(24)
    SESSIONS[session_id] = {}
    response.set_cookie(COOKIE, sign(session_id), httponly=True, samesite="Lax")
    return session_id


def create_app() -> Flask:
    """The vulnerable app, unprotected."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> Response:
        _, record = _current()
        if record is not None:
            user = record.get("user")
            text = f"Hello {user}" if user else "Hello again, anonymous visitor"
            return Response(text + "\n", mimetype="text/plain")
        response = Response("Hello, anonymous visitor\n", mimetype="text/plain")
        _new_session(response)
        return response

    @app.get("/login")
    def login_form() -> Response:
        return Response(LOGIN_FORM, mimetype="text/html")

    @app.post("/login")
    def login() -> Response:
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        expected = USERS.get(username)
        if expected is None or not hmac.compare_digest(expected, password):
            return Response("Invalid credentials\n", status=401, mimetype="text/plain")
        response = Response(f"Logged in as {username}\n", mimetype="text/plain")
        # THE BUG: a correctly signed sid from the client is trusted and kept.
        # The signature proves the server issued it, not that this browser
        # obtained it, so an attacker's planted sid ends up logged in.
        session_id = verify(request.cookies.get(COOKIE))
        if session_id is None:
            session_id = _new_session(response)
        else:
            response.set_cookie(COOKIE, sign(session_id), httponly=True, samesite="Lax")
        SESSIONS.setdefault(session_id, {})["user"] = username
        return response

    @app.get("/profile")
    def profile() -> Response:
        _, record = _current()
        if not record or "user" not in record:
            return Response("Not logged in\n", status=401, mimetype="text/plain")
        return Response(f"Profile of {record['user']}\n", mimetype="text/plain")

    @app.post("/logout")
    def logout() -> Response:
        session_id, _ = _current()
        if session_id is not None:
            SESSIONS.pop(session_id, None)
        response = Response("Logged out\n", mimetype="text/plain")
        response.delete_cookie(COOKIE, httponly=True, samesite="Lax")
        return response

    return app


def settings(app: Flask) -> dict[str, Any]:
    """This app's FixGuard settings: which cookie is its session, which routes log in and out."""
    return {
        "app_cookies": (COOKIE,),
        "login": ("POST /login",),
        "logout": ("POST /logout",),
    }


def protect(app: Flask, *, secret_key: str | bytes, secure: bool = True, **options: Any) -> Flask:
    """Wrap ``app`` in fixguard, configured for this app; returns ``app``.

    ``sid`` goes into fixguard's vault, ``POST /login`` rotates the ID the
    browser holds and ``POST /logout`` retires it. Extra keyword arguments
    (``on_fixation``, ``on_event``, ...) are passed on to :class:`FixGuard`.
    """
    from fixguard import FixGuard

    app.wsgi_app = FixGuard(  # type: ignore[method-assign]
        app.wsgi_app, secret_key=secret_key, secure=secure, **{**settings(app), **options}
    )
    return app


def create_protected_app() -> Flask:
    """The same app behind fixguard, configured by ``FIXGUARD_*`` variables.

    ``FIXGUARD_SECRET_KEY`` is required; ``FIXGUARD_SECURE=false`` drops the
    ``Secure`` cookie flag for plain-http local runs.
    """
    app = create_app()
    return protect_from_env(app, settings(app))


app = create_app()
