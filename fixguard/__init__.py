"""fixguard: WSGI middleware that makes session fixation impossible for the app it wraps.

Public names only; see the README for the model and the settings.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .config import ConfigError
from .events import Event
from .record import SessionInfo
from .signals import signal
from .stores import MemoryStore, Store, StoreError
from .wsgi import FixGuard

if TYPE_CHECKING:
    from .stores.redis import RedisStore as RedisStore

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
try:
    # One version source: setup.cfg, as installed. A source tree that was never
    # installed has no metadata, and says so rather than guess.
    __version__ = version("fixguard")
except PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    """``RedisStore`` on first use: ``import fixguard`` does not need redis-py."""
    if name == "RedisStore":
        from .stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
