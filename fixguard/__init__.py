"""fixguard: WSGI middleware that makes session fixation impossible for the app it wraps.

Public names only; see the README for the model and the settings.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version
from typing import TYPE_CHECKING, Any

from .config import ConfigError
from .events import Event
from .middleware import FixGuard
from .record import SessionInfo
from .signals import signal
from .stores import MemoryStore, Store, StoreError

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
try:  # one source of truth: the installed distribution's metadata (setup.cfg)
    __version__ = _distribution_version("fixguard")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    """``RedisStore`` on first use: ``import fixguard`` does not need redis-py."""
    if name == "RedisStore":
        from .stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
