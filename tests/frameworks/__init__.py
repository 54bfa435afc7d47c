"""The framework matrix: one real app per framework, each with a login flow, none aware of fixguard.

Every app module here exposes ``create_app()`` (a fresh WSGI app with fresh
state) and the same behaviour, on routes each framework would naturally use:

* ``GET /`` counts visits in the app's own session and answers
  ``visits=N user=NAME`` (``anonymous`` before login);
* a login route (``alice`` / ``ALICE_PASSWORD``), a logout route;
* ``GET /profile``: ``profile of alice`` for the logged-in user; anything else
  (401, or Django's redirect to its login page) for anyone else.

No module imports fixguard or knows it exists: ``test_matrix.py`` wraps each
one from outside, with configuration only.
"""

ALICE_PASSWORD = "wonderland"
USERS = {"alice": ALICE_PASSWORD, "bob": "builder"}
APP_SECRET = "app-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
