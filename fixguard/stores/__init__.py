"""Session stores: one protocol, in memory or in Redis (sync, or ``redis.asyncio`` for ASGI)."""

from typing import TYPE_CHECKING, Any

from .base import Store, StoreError
from .memory import MemoryStore

if TYPE_CHECKING:
    from .redis import RedisStore as RedisStore
    from .redis_async import AsyncRedisStore as AsyncRedisStore

__all__ = ["MemoryStore", "Store", "StoreError"]


def __getattr__(name: str) -> Any:
    """``RedisStore``, ``AsyncRedisStore`` on first use, so redis-py is only needed by those who use it."""
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "AsyncRedisStore":
        from .redis_async import AsyncRedisStore

        return AsyncRedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
