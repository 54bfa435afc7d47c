"""Settings of the fixguard-protected test project. From the environment (the tests set them):

``FGTEST_DB``         the sqlite file, in a temporary directory the test made.
``FGTEST_FIXGUARD``   ``settings.FIXGUARD`` as JSON (unset: no FIXGUARD setting at all).
``FGTEST_SESSION_COOKIE_SECURE``  ``1`` for ``SESSION_COOKIE_SECURE = True``.
``FGTEST_LOGIN_URL``  ``LOGIN_URL`` (default ``/accounts/login/``; a URL name works too).
"""

from __future__ import annotations

import json
import os

SECRET_KEY = os.urandom(32).hex()
DEBUG = False
ALLOWED_HOSTS = ["localhost", "testserver", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "fixguard.contrib.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.django_fixguard.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "loaders": [
                ("django.template.loaders.locmem.Loader", {
                    "registration/login.html": "<form method='post'>{% csrf_token %}{{ form.as_p }}</form>",
                }),
                "django.template.loaders.app_directories.Loader",
            ],
        },
    }
]  # fmt: skip
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("FGTEST_DB", ":memory:")}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for tests
USE_TZ = True

SESSION_COOKIE_NAME = "appsession"  # not Django's default: fixguard must take it from here
SESSION_COOKIE_SECURE = os.environ.get("FGTEST_SESSION_COOKIE_SECURE") == "1"
LOGIN_URL = os.environ.get("FGTEST_LOGIN_URL", "/accounts/login/")
LOGIN_REDIRECT_URL = "/profile/"

if "FGTEST_FIXGUARD" in os.environ:
    FIXGUARD = json.loads(os.environ["FGTEST_FIXGUARD"])
