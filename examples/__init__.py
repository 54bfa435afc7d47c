"""Small, deliberately vulnerable Flask apps that fixguard is shown protecting."""

from __future__ import annotations

from typing import Any

from flask import Flask


def protect_from_env(app: Flask, settings: dict[str, Any]) -> Flask:
    """``app`` behind FixGuard configured by ``FIXGUARD_*`` variables (or ``FIXGUARD_CONFIG``).

    ``settings`` are the example's own routes and cookies; they win over the
    environment, which supplies the deployment's part: ``FIXGUARD_SECRET_KEY``,
    ``FIXGUARD_SECURE=false`` for plain-http runs, ``FIXGUARD_REDIS_URL``…
    A missing or weak key fails at start-up with fixguard's own message.
    """
    from fixguard import FixGuard

    app.wsgi_app = FixGuard.from_env(app.wsgi_app, **settings)  # type: ignore[method-assign]
    return app
