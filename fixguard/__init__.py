"""fixguard: WSGI middleware that makes session fixation impossible for the app it wraps.

Public names only; see the README for the model and the settings.
"""

from .config import ConfigError
from .events import Event
from .middleware import FixGuard
from .record import SessionInfo
from .signals import signal
from .stores import MemoryStore, Store, StoreError

__all__ = [
    "ConfigError",
    "Event",
    "FixGuard",
    "MemoryStore",
    "SessionInfo",
    "Store",
    "StoreError",
    "signal",
]
__version__ = "0.1.0"
