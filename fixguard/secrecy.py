"""Holding a request's secrets where error reporters do not look.

Sentry (by default), Rollbar and the like record the local variables of
every frame an exception unwinds through: each value's ``repr()``, the
items of containers, and for some the ``vars()`` of objects. When the app
raises, fixguard's frames, and the per-request objects they reach, are on
that path. So a secret a request carries or produces — a cookie value, an ID,
the successor ID to send, fixguard's Set-Cookie once it has left — is kept
only in an object that shows none of it: :class:`Sealed`, which has no
``__dict__``, is not a container, and whose ``repr()`` is ``<sealed>``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Sealed(Generic[T]):
    """A value that ``repr()``, ``vars()`` and iteration do not reveal; :meth:`open` does."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def open(self) -> T:
        """The value itself."""
        return self._value

    def __repr__(self) -> str:
        return "<sealed>"
