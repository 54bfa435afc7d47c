"""A Flask app with HTTP Basic login and a server-side session that survives it.

The flaw
--------
Credentials arrive once, as HTTP Basic Auth on ``POST /login``; after that the
app remembers the user in a Flask session. The session lives server-side (see
:class:`DictSessionInterface`): the ``session`` cookie holds nothing but a
random ID that keys a record in ``SESSIONS``. Like the older server-side
session extensions it imitates, the interface keeps that ID for the whole life
of the session, so writing ``session["user"]`` at login upgrades whichever
session the browser arrived with, and whoever else holds its ID is now
logged in too.

Every visitor gets a session on the first ``GET /`` (it counts visits), so an
attacker simply:

1. visits ``GET /`` and notes the ``session`` cookie he is given;
2. plants it in the victim's browser;
3. waits for the victim to log in with Basic Auth at ``POST /login`` (the
   button of ``GET /login``; the browser answers the challenge with her
   credentials): the victim's session keeps the attacker's ID and gains ``user``;
4. replays the ID and reads the victim's ``GET /profile``.

Calling ``session.clear()`` does not help: it empties the record but keeps
its ID. The app would need a way to re-key the session at login. :func:`protect`
gets the same effect from fixguard, from outside the app: the ``session``
cookie never leaves the server, and the fixguard ID the browser holds is
replaced at login and dead afterwards.

Running it
----------
From a source checkout, with Flask installed (``pip install -e '.[examples]'``)::

    flask --app examples.basic_auth_app run              # vulnerable
    export FIXGUARD_SECRET_KEY=...                       # 32+ random bytes
    FIXGUARD_SECURE=false flask --app 'examples.basic_auth_app:create_protected_app()' run
    curl -i -X POST -u alice:secret http://127.0.0.1:5000/login

Users: ``alice`` / ``secret`` and ``bob`` / ``hunter2``. ``fixguard demo``
plays the whole attack against this app, bare and protected.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response, request, session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from examples import protect_from_env

#: Server-side session data: session ID (the ``session`` cookie) -> contents.
SESSIONS: dict[str, dict[str, Any]] = {}

USERS = {"alice": "secret", "bob": "hunter2"}

#: The sign-in page a browser shows: its button posts to ``/login``, which
#: challenges the browser for its Basic credentials (the browser's own dialog).
LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1>
<form method="post" action="/login"><p><button type="submit">Sign in</button></p></form>
</body></html>
"""


def reset() -> None:
    """Forget every session (used between tests and demo runs)."""
    SESSIONS.clear()


class ServerSideSession(CallbackDict[str, Any], SessionMixin):
    """Session contents plus the ID they are stored under."""

    def __init__(
        self, initial: Mapping[str, Any] | None = None, *, sid: str, new: bool = False
    ) -> None:
        def on_update(_: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False


class DictSessionInterface(SessionInterface):
    """Flask sessions stored in a dict, the cookie carrying only a random ID.

    A known ID is reused for as long as its record exists, login included:
    that is the fixation bug this example is about. An unknown ID is replaced
    by a fresh one, so the attacker does need a session the app issued.
    """

    def __init__(self, store: dict[str, dict[str, Any]]) -> None:
        self.store = store

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid and sid in self.store:
            return ServerSideSession(self.store[sid], sid=sid)
        return ServerSideSession(sid=secrets.token_urlsafe(32), new=True)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSideSession):
            raise TypeError("DictSessionInterface can only save its own sessions")
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if not session:
            if session.modified:  # emptied by this request: forget it
                self.store.pop(session.sid, None)
                response.delete_cookie(name, domain=domain, path=path)
            return
        if session.modified or session.new:
            self.store[session.sid] = dict(session)
        if session.new or self.should_set_cookie(app, session):
            response.set_cookie(
                name,
                session.sid,
                expires=self.get_expiration_time(app, session),
                httponly=self.get_cookie_httponly(app),
                domain=domain,
                path=path,
                secure=self.get_cookie_secure(app),
                samesite=self.get_cookie_samesite(app),
            )


def _text(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def create_app() -> Flask:
    """The vulnerable app, unprotected."""
    app = Flask(__name__)
    app.session_interface = DictSessionInterface(SESSIONS)

    @app.get("/")
    def index() -> Response:
        session["visits"] = session.get("visits", 0) + 1
        who = session.get("user", "anonymous visitor")
        return _text(f"Hello {who}, visit #{session['visits']}")

    @app.get("/login")
    def login_form() -> Response:
        return Response(LOGIN_FORM, mimetype="text/html")

    @app.post("/login")
    def login() -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return _challenge("Basic credentials required")
        expected = USERS.get(auth.username or "")
        if expected is None or not hmac.compare_digest(expected, auth.password or ""):
            return _challenge("Invalid credentials")
        # THE BUG: the user is written into the session the browser came with;
        # its ID, possibly planted by an attacker, now opens a logged-in session.
        session["user"] = auth.username
        return _text(f"Logged in as {auth.username}")

    @app.get("/profile")
    def profile() -> Response:
        user = session.get("user")
        if not user:
            return _text("Not logged in", 401)
        return _text(f"Profile of {user}")

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return _text("Logged out")

    return app


def _challenge(message: str) -> Response:
    response = _text(message, 401)
    response.headers["WWW-Authenticate"] = 'Basic realm="fixguard example"'
    return response


def settings(app: Flask) -> dict[str, Any]:
    """This app's FixGuard settings: which cookie is its session, which routes log in and out."""
    return {
        "app_cookies": (app.config["SESSION_COOKIE_NAME"],),
        "login": ("POST /login",),
        "logout": ("POST /logout",),
    }


def protect(app: Flask, *, secret_key: str | bytes, secure: bool = True, **options: Any) -> Flask:
    """Wrap ``app`` in fixguard, configured for this app; returns ``app``.

    Flask's ``session`` cookie goes into fixguard's vault, ``POST /login``
    rotates the ID the browser holds and ``POST /logout`` retires it. Extra
    keyword arguments (``on_fixation``, ``on_event``, ...) go to :class:`FixGuard`.
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
