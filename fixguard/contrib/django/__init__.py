"""fixguard for Django: ``get_wsgi_application()`` and ``get_asgi_application()``, by ``settings.FIXGUARD``.

In ``wsgi.py`` (or ``asgi.py``), instead of Django's own::

    from fixguard.contrib.django import get_wsgi_application
    application = get_wsgi_application()

    from fixguard.contrib.django import get_asgi_application
    application = get_asgi_application()

``settings.FIXGUARD`` is a dict of FixGuard's settings under their Python names
(``{"secret_key": …, "login": ["POST /accounts/login/ 302"], "redis_url": …}``).
``app_cookies`` defaults to ``SESSION_COOKIE_NAME``. Add ``"fixguard.contrib.django"``
to ``INSTALLED_APPS`` for the deployment checks of ``manage.py check --deploy``
(see :mod:`fixguard.contrib.django.checks`).

The ASGI one wraps Django's ASGI handler in :class:`fixguard.asgi.FixGuardMiddleware`
(``redis_url`` then names an ``AsyncRedisStore``: the same keys and values, so a
WSGI and an ASGI deployment can share one Redis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config import ConfigError
from ...middleware import FixGuard
from .._settings import read_settings

__all__ = ["SETTING", "get_asgi_application", "get_wsgi_application", "guard_options"]

#: The Django setting that holds fixguard's settings.
SETTING = "FIXGUARD"


def guard_options() -> dict[str, Any]:
    """FixGuard's keywords from ``settings.FIXGUARD``, with Django's defaults filled in."""
    from django.conf import settings

    raw = getattr(settings, SETTING, None)
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"settings.{SETTING} must be a dict of fixguard settings, e.g. "
            f'{SETTING} = {{"secret_key": os.environ["FIXGUARD_SECRET_KEY"], '
            '"login": ["POST /accounts/login/ 302"]}'
        )
    options = read_settings(raw, f"settings.{SETTING}")
    if options.get("secret_key") is None:
        raise ConfigError(
            f'settings.{SETTING}["secret_key"] is required: at least 32 random bytes, e.g. '
            'python -c "import secrets; print(secrets.token_urlsafe(48))" (keep it apart from SECRET_KEY)'
        )
    options.setdefault("app_cookies", (settings.SESSION_COOKIE_NAME,))
    return options


def get_wsgi_application(**overrides: Any) -> FixGuard:
    """Django's WSGI application wrapped in FixGuard; keyword ``overrides`` win over the setting."""
    from django.core.wsgi import get_wsgi_application as django_application

    app = django_application()  # sets Django up, so settings can be read
    return FixGuard(app, **{**guard_options(), **overrides})


def get_asgi_application(**overrides: Any) -> Any:
    """Django's ASGI application wrapped in FixGuardMiddleware; keyword ``overrides`` win over the setting."""
    from django.core.asgi import get_asgi_application as django_application

    from ...asgi import FixGuardMiddleware

    app = django_application()  # sets Django up, so settings can be read
    return FixGuardMiddleware(app, **{**guard_options(), **overrides})
