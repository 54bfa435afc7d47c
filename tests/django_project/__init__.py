"""A real Django project for the ``fixguard check`` tests: admin, auth, sessions, sqlite.

``tests/test_check.py`` creates the database (``migrate``) and a superuser with
``python -m django`` — what ``manage.py`` runs — then serves
``tests.django_project.wsgi:application`` with gunicorn, bare or behind fixguard.
"""
