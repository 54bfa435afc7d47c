"""The Django app ``fixguard.contrib.django``: registers fixguard's deployment checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class FixguardConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    """``INSTALLED_APPS += ["fixguard.contrib.django"]``: ``manage.py check --deploy`` checks fixguard."""

    name = "fixguard.contrib.django"
    label = "fixguard"
    verbose_name = "fixguard"

    def ready(self) -> None:
        from .checks import check_deployment

        checks.register(check_deployment, checks.Tags.security, deploy=True)
