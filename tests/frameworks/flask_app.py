"""Flask with Flask-Login, on Flask's default session: a signed cookie named ``session``.

The session's contents travel in the cookie itself, so a pre-login cookie
replayed after login carries no user: this stack is not vulnerable to
fixation when bare. Routes: ``GET /``, ``POST /login`` (form), ``GET /profile``
(``@login_required``: 401 when anonymous), ``POST /logout``.
"""

from __future__ import annotations

import hmac

from flask import Flask, request, session
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from . import APP_SECRET, USERS


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = APP_SECRET
    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in USERS else None

    @app.get("/")
    def index() -> str:
        session["visits"] = session.get("visits", 0) + 1
        who = current_user.id if current_user.is_authenticated else "anonymous"
        return f"visits={session['visits']} user={who}"

    @app.post("/login")
    def login() -> tuple[str, int]:
        name = request.form.get("username", "")
        if not hmac.compare_digest(USERS.get(name, "\0"), request.form.get("password", "")):
            return "bad credentials", 401
        login_user(User(name))
        return f"welcome {name}", 200

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return f"profile of {current_user.id}"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    return app
