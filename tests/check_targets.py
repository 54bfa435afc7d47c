"""Apps that ``fixguard check`` is tried on, and the verdict each must get.

Two apps here join the examples and the Django admin in the verdict table:

* the *keep* app: server-side sessions (the examples' ``DictSessionInterface``),
  no session before login, and a login that writes the user into whatever
  session the browser came with. Planting an anonymous session finds nothing
  (there is none); an attacker who logs in as himself and plants *that*
  session gets the victim's login in it. Only ``login-rotates-authenticated``
  sees it.
* a *flaskr*-shaped app, as Flask's tutorial writes it: Flask's signed-cookie
  session, ``session.clear()`` at login, a GET logout, ``@login_required``
  pages that redirect to the login form.

Each has a bare and a protected form; the protected one (fixguard with a
login rule that matches) must have no finding. :data:`VERDICTS` is the table
the HTTP (gunicorn) and the in-process tests both check.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, redirect, request, session

from examples.basic_auth_app import DictSessionInterface

from .servers import REPO

USERS = {"alice": "secret", "bob": "hunter2"}
FLASKR_KEY = "flaskr-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def _text(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def _valid(username: str, password: str, users: dict[str, str] = USERS) -> bool:
    expected = users.get(username)
    return expected is not None and hmac.compare_digest(expected, password)


def create_keep_app(users: dict[str, str] = USERS) -> Flask:
    """Server-side sessions, none before login; a login keeps the session it arrived with."""
    app = Flask(__name__)
    app.session_interface = DictSessionInterface({})

    @app.get("/")
    def index() -> Response:
        return _text("Welcome")  # does not touch the session: no cookie before login

    @app.post("/login")
    def login() -> Response:
        username, password = request.form.get("username", ""), request.form.get("password", "")
        if not _valid(username, password, users):
            return _text("Invalid credentials", 401)
        session["user"] = username  # THE BUG: into the session the browser came with, logged in or not
        return _text(f"Logged in as {username}")

    @app.get("/profile")
    def profile() -> Response:
        user = session.get("user")
        return _text(f"Profile of {user}") if user else _text("Not logged in", 401)

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return _text("Logged out")

    return app


_FLASKR_PAGE = "<!doctype html><title>{title} - Flaskr</title><nav>{nav}</nav><section>{body}</section>"


def create_flaskr_app() -> Flask:
    """Flask's tutorial, in shape: cookie session, ``session.clear()`` at login, GET logout."""
    app = Flask(__name__)
    app.secret_key = FLASKR_KEY

    def page(title: str, body: str) -> str:
        user = session.get("user_id")
        nav = "<a href='/auth/login'>Log In</a>"
        if user:
            nav = f"<span>{user}</span><a href='/auth/logout'>Log Out</a>"
        return _FLASKR_PAGE.format(title=title, nav=nav, body=body)

    def login_required(view: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(view)
        def wrapped() -> Any:
            if session.get("user_id") is None:
                return redirect("/auth/login")
            return view()

        return wrapped

    @app.get("/")
    def index() -> str:
        return page("Posts", "<article>Hello world</article>")

    @app.route("/auth/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            username, password = request.form.get("username", ""), request.form.get("password", "")
            if _valid(username, password):
                session.clear()
                session["user_id"] = username
                return redirect("/")
            return page("Log In", "<p class=flash>Incorrect username or password.</p>")
        return page("Log In", "<form method=post><input name=username><input name=password></form>")

    @app.get("/auth/logout")
    def logout() -> Any:
        session.clear()
        return redirect("/")

    @app.get("/create")
    @login_required
    def create() -> str:
        return page("New Post", f"<form method=post><p>Writing as {session['user_id']}</p></form>")

    return app


def _protect(app: Flask, secret_key: str, **rules: Any) -> Flask:
    from fixguard import FixGuard

    app.wsgi_app = FixGuard(app.wsgi_app, secret_key=secret_key, secure=False, **rules)  # type: ignore[method-assign]
    return app


KEEP_RULES: dict[str, Any] = {
    "app_cookies": ("session",),
    "login": ("POST /login",),
    "logout": ("POST /logout",),
}
FLASKR_RULES: dict[str, Any] = {
    "app_cookies": ("session",),
    "login": ("POST /auth/login 302",),
    "logout": ("GET /auth/logout",),
}


def protected_keep_app(secret_key: str | None = None) -> Flask:
    """The keep app behind fixguard (``FIXGUARD_SECRET_KEY`` when no key is given)."""
    return _protect(create_keep_app(), secret_key or os.environ["FIXGUARD_SECRET_KEY"], **KEEP_RULES)


def protected_flaskr_app(secret_key: str | None = None) -> Flask:
    """The flaskr-shaped app behind fixguard (``FIXGUARD_SECRET_KEY`` when no key is given)."""
    return _protect(create_flaskr_app(), secret_key or os.environ["FIXGUARD_SECRET_KEY"], **FLASKR_RULES)


keep_app = create_keep_app()
flaskr_app = create_flaskr_app()


# --------------------------------------------------------------------------- the verdict table

# A printed secret would be a run of 14+ word characters mixing letters and digits.
_SECRET_LIKE = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{14,}")


def assert_no_secret(text: str) -> None:
    found = _SECRET_LIKE.findall(text.replace("WSTG-SESS-03", ""))
    assert not found, f"something like a full cookie value or token was printed: {found}"


FORM = ["--form", "username=alice", "--form", "password=secret"]
BASIC = ["--basic", "alice:secret"]
SECOND_ACCOUNT = ["--attacker-form", "username=bob", "--attacker-form", "password=hunter2"]
FLASK_LOGIN = ["--login", "POST /login", "--probe", "/profile", "--logout", "POST /logout"]
FLASKR_LOGIN = ["--login", "POST /auth/login 302", "--probe", "/create", "--logout", "GET /auth/logout"]
DJANGO_USER, DJANGO_PASSWORD = "admin", "correct-horse-battery-staple"
DJANGO_SECOND_USER, DJANGO_SECOND_PASSWORD = "mallory", "another-horse-battery-staple"
DJANGO = [
    "--login", "POST /admin/login/ 302",
    "--csrf", "csrfmiddlewaretoken",
    "--form", f"username={DJANGO_USER}",
    "--form", f"password={DJANGO_PASSWORD}",
    "--probe", "/admin/",
    "--logout", "POST /admin/logout/",
]  # fmt: skip
DJANGO_SECOND_ACCOUNT = [
    "--attacker-form", f"username={DJANGO_SECOND_USER}",
    "--attacker-form", f"password={DJANGO_SECOND_PASSWORD}",
]  # fmt: skip

EXAMPLE_FINDINGS = {"login-rotates-id", "pre-login-id-dead", "login-rotates-authenticated"}


@dataclass(frozen=True)
class Verdict:
    """One row: the target (a name the server fixtures know), the options, the failed checks."""

    target: str
    argv: tuple[str, ...]
    findings: frozenset[str]

    @property
    def id(self) -> str:
        extra = "-second-account" if "--attacker-form" in self.argv else ""
        return self.target + extra


def _row(target: str, argv: list[str], findings: set[str] | None = None) -> Verdict:
    return Verdict(target, tuple(argv), frozenset(findings or ()))


VERDICTS = [
    _row("signed-bare", [*FLASK_LOGIN, *FORM], EXAMPLE_FINDINGS),
    _row("signed-protected", [*FLASK_LOGIN, *FORM]),
    _row("basic-bare", [*FLASK_LOGIN, *BASIC], EXAMPLE_FINDINGS),
    _row("basic-protected", [*FLASK_LOGIN, *BASIC]),
    _row("keep-bare", [*FLASK_LOGIN, *FORM], {"login-rotates-authenticated"}),
    _row("keep-bare", [*FLASK_LOGIN, *FORM, *SECOND_ACCOUNT], {"login-rotates-authenticated"}),
    _row("keep-protected", [*FLASK_LOGIN, *FORM]),
    _row("keep-protected", [*FLASK_LOGIN, *FORM, *SECOND_ACCOUNT]),
    # a cookie session cannot be revoked: the old cookie works after a re-login and after logout
    _row("flaskr-bare", [*FLASKR_LOGIN, *FORM], {"login-rotates-authenticated", "logout-id-dead"}),
    _row("flaskr-protected", [*FLASKR_LOGIN, *FORM]),
    _row("django-bare", DJANGO),
    _row("django-bare", [*DJANGO, *DJANGO_SECOND_ACCOUNT]),
    _row("django-protected", DJANGO),
]


# --------------------------------------------------------------------------- Django's database


def django_database(env: dict[str, str]) -> None:
    """Migrate the test project's database and create its two staff users (``python -m django``)."""
    _django(["migrate", "--noinput", "-v", "0"], env)
    for user, password in ((DJANGO_USER, DJANGO_PASSWORD), (DJANGO_SECOND_USER, DJANGO_SECOND_PASSWORD)):
        _django(
            ["createsuperuser", "--noinput", "--username", user, "--email", f"{user}@example.com"],
            {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        )


def _django(args: list[str], env: dict[str, str]) -> None:
    """``python -m django ARGS``: what ``manage.py ARGS`` runs, for the test project."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
