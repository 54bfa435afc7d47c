"""Unit-test an app that calls :func:`fixguard.signal` without running FixGuard.

``fixguard.signal(environ, "login")`` raises when no FixGuard handled the
request: an app that believes it is protected when it is not must find out.
In the app's own unit tests no FixGuard runs, so give the test client this
module's environ, and read back what the app signalled from the request's environ::

    # Flask: the test client as a context manager keeps the last request
    with app.test_client() as client:
        client.environ_base.update(fixguard.contrib.testing.environ())
        client.post("/login", data=...)
        assert fixguard.contrib.testing.signals(flask.request.environ) == ["login"]

    # Django
    client = django.test.Client(**fixguard.contrib.testing.environ())
    response = client.post("/accounts/login/", {...})
    assert fixguard.contrib.testing.signals(response.wsgi_request.environ) == ["login"]

The marker is an environ key with a dot in it, which no HTTP request can set
(headers arrive as ``HTTP_*``), so production stays loud.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..signals import ENVIRON_CONTEXT, ENVIRON_SIGNALS, ENVIRON_SUBJECT

__all__ = ["environ", "signals", "subject"]


class _UnitTest:
    """Stands where FixGuard's per-request context would: signals are recorded, nothing else."""

    def __repr__(self) -> str:
        return "<fixguard.contrib.testing: signals recorded, no FixGuard>"


_MARKER = _UnitTest()


def environ() -> dict[str, Any]:
    """Extra WSGI environ for a test client: ``fixguard.signal()`` records instead of raising."""
    return {ENVIRON_CONTEXT: _MARKER}


def signals(request_environ: Mapping[str, Any]) -> list[str]:
    """The signals the app raised in the request that had this environ, in order."""
    return list(request_environ.get(ENVIRON_SIGNALS, ()))


def subject(request_environ: Mapping[str, Any]) -> str | None:
    """The subject the app named with its signal, if any."""
    value = request_environ.get(ENVIRON_SUBJECT)
    return None if value is None else str(value)
