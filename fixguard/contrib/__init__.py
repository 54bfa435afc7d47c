"""Framework-native setup for fixguard: Flask, Django, Prometheus, and a test helper.

Each module here imports its framework, so it is imported only by that
framework's users (``fixguard.contrib.flask``, ``fixguard.contrib.django``,
``fixguard.contrib.prometheus``, ``fixguard.contrib.testing``); the core never
imports anything from this package.
"""
