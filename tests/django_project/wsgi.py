"""The test project's WSGI app, bare or behind fixguard.

``CHECKTEST_DJANGO_PROTECT=1`` wraps it in :class:`~fixguard.FixGuard`,
keyed by ``FIXGUARD_SECRET_KEY`` (``FIXGUARD_SECURE=0`` for plain http):

* ``app_cookies=("sessionid",)``: Django's session cookie goes into the vault.
  ``csrftoken`` stays with the browser: it is not a session credential (Django
  rotates it at login anyway), and JavaScript that sends it in
  ``X-CSRFToken`` must be able to read it. An app that wants it server-side
  sets ``CSRF_USE_SESSIONS = True``, and it then lives in the vaulted session.
* ``login=("POST /admin/login/ 302",)``: Django answers a failed login with 200
  (the form again, with errors), a successful one with a redirect.
* ``logout=("POST /admin/logout/",)``.

``CHECKTEST_DJANGO_LOGIN`` (comma-separated, may be empty) replaces the login
rules, for the tests that play a login escaping them.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")

application: Any = get_wsgi_application()

if os.environ.get("CHECKTEST_DJANGO_PROTECT") == "1":
    from fixguard import FixGuard

    application = FixGuard(
        application,
        secret_key=os.environ["FIXGUARD_SECRET_KEY"],
        app_cookies=("sessionid",),
        login=tuple(
            rule.strip()
            for rule in os.environ.get("CHECKTEST_DJANGO_LOGIN", "POST /admin/login/ 302").split(",")
            if rule.strip()
        ),
        logout=("POST /admin/logout/",),
        secure=os.environ.get("FIXGUARD_SECURE", "1") != "0",
    )
