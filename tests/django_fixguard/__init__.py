"""A Django project protected through ``fixguard.contrib.django``, for tests that run it in a subprocess.

Django's settings can be configured once per process, and the framework
matrix already does so in the test process; this project runs in its own
(``python -m tests.django_fixguard.play``, ``python -m django check``).
"""
