"""The WSGI middleware's former home: :class:`FixGuard` now lives in :mod:`fixguard.wsgi`.

Kept so that ``from fixguard.middleware import FixGuard`` goes on working.
"""

from __future__ import annotations

from .core.response import looks_like_session_cookie
from .wsgi import ENVIRON_SESSION, FixGuard

__all__ = ["ENVIRON_SESSION", "FixGuard", "looks_like_session_cookie"]
