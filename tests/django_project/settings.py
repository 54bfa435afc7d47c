"""Settings of the test project: Django's admin as it ships, nothing else.

From the environment (the tests set them):

``CHECKTEST_DJANGO_DB``
    the sqlite file, in a temporary directory the test made.
``CHECKTEST_DJANGO_KEY``
    Django's ``SECRET_KEY`` (random per test run).
"""

from __future__ import annotations

import os

_DB = os.environ.get("CHECKTEST_DJANGO_DB")
if not _DB:
    raise RuntimeError("Set CHECKTEST_DJANGO_DB to the sqlite file this test project should use")

SECRET_KEY = os.environ.get("CHECKTEST_DJANGO_KEY") or os.urandom(32).hex()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.django_project.urls"
WSGI_APPLICATION = "tests.django_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's default session setup, spelled out: database sessions in a
# ``sessionid`` cookie (HttpOnly, SameSite=Lax), the CSRF secret in ``csrftoken``.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "sessionid"
CSRF_COOKIE_NAME = "csrftoken"

USE_TZ = True
STATIC_URL = "static/"
