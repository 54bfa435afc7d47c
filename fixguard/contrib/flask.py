"""fixguard as a Flask extension: ``FixGuard(app)`` or ``guard = FixGuard(); guard.init_app(app)``.

Reads ``app.config["FIXGUARD_*"]`` — the same names as FixGuard's keywords and
the ``FIXGUARD_*`` environment variables, with Python values
(``FIXGUARD_LOGIN = ("POST /login",)``, ``FIXGUARD_SECURE = False``) — and
wraps ``app.wsgi_app``, so the Flask object stays the app and ``app.test_client()``
goes through fixguard. ``app_cookies`` defaults to ``SESSION_COOKIE_NAME``.
Keywords given to the extension win over ``app.config`` (``on_event=``, ``store=``).

The wrapped guard is ``app.extensions["fixguard"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..middleware import FixGuard as Guard
from ._settings import read_settings

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["PREFIX", "FixGuard"]

PREFIX = "FIXGUARD_"


class FixGuard:
    """The Flask extension. One instance may serve several apps (``init_app`` each)."""

    def __init__(self, app: Flask | None = None, **settings: Any) -> None:
        self.settings = settings
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> Guard:
        """Wrap ``app.wsgi_app`` in a fixguard configured from ``app.config``; returns the guard."""
        if isinstance(app.wsgi_app, Guard) or "fixguard" in app.extensions:
            raise ConfigError(
                "this Flask app is already protected by fixguard: keep one FixGuard(app) or init_app(app)"
            )
        configured = {key: value for key, value in app.config.items() if key.startswith(PREFIX)}
        options = read_settings(configured, "app.config", prefix=PREFIX)
        options.update(self.settings)
        if options.get("secret_key") is None:
            raise ConfigError(
                "fixguard needs app.config['FIXGUARD_SECRET_KEY']: at least 32 random bytes, e.g. "
                'python -c "import secrets; print(secrets.token_urlsafe(48))" (keep it apart from SECRET_KEY)'
            )
        options.setdefault("app_cookies", (app.config.get("SESSION_COOKIE_NAME") or "session",))
        guard = Guard(app.wsgi_app, **options)
        app.wsgi_app = guard  # type: ignore[method-assign]
        app.extensions["fixguard"] = guard
        return guard

    @staticmethod
    def guard_of(app: Flask) -> Guard:
        """The guard protecting ``app`` (its store, settings, refusals)."""
        guard: Guard = app.extensions["fixguard"]
        return guard
