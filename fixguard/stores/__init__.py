"""Session stores: one protocol, in memory or in Redis."""

from .base import Store, StoreError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreError"]
