"""Django with ``contrib.sessions`` and ``contrib.auth``, configured in-process.

A real user in a real (in-memory sqlite) database, logged in by Django's own
``LoginView`` (CSRF-protected form, ``authenticate`` + ``login``) and logged out
by ``LogoutView`` (POST, CSRF-protected). Django's ``login()`` cycles the
session key, so the bare app is *not* vulnerable to fixation; wrapped, it
must simply keep working. The failed-login form answers 200, the
successful one 302: the login rule needs the status.

Routes (``django_urls``): ``GET /``, ``GET|POST /login/``, ``GET /profile``
(``@login_required``: a redirect to the login page when anonymous),
``POST /logout/``.
"""

from __future__ import annotations

from typing import Any

from . import ALICE_PASSWORD, APP_SECRET

LOGIN_TEMPLATE = (
    "<form method='post' action='/login/'>{% csrf_token %}{{ form.as_p }}"
    "<button type='submit'>Sign in</button></form>"
)

_ready = False


def _setup() -> None:
    """Configure Django once per process, create the schema and the user."""
    global _ready
    if _ready:
        return
    import django
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("Django settings were configured elsewhere in this process")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=APP_SECRET,
        ALLOWED_HOSTS=["localhost", "testserver"],
        ROOT_URLCONF="tests.frameworks.django_urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        ("django.template.loaders.locmem.Loader", {"registration/login.html": LOGIN_TEMPLATE})
                    ]
                },
            }
        ],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast, for tests
        LOGIN_URL="/login/",
        LOGIN_REDIRECT_URL="/profile",
        LOGOUT_REDIRECT_URL="/",
        USE_TZ=True,
    )
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user("alice", password=ALICE_PASSWORD)
    User.objects.create_user("bob", password="builder")
    _ready = True


def create_app() -> Any:
    """Django's WSGI handler, with no session left from an earlier app."""
    _setup()
    from django.contrib.sessions.models import Session
    from django.core.wsgi import get_wsgi_application

    Session.objects.all().delete()
    return get_wsgi_application()
