"""What :class:`fixguard.stores.redis.RedisStore` sends and reads: its Lua scripts, TTLs, replies, errors.

Each script reads and writes only ``KEYS[1]``, so it is atomic there and runs
unchanged on Redis Cluster. The compare-and-set scripts only read the value's
guard (the part before the first ``|``), never its JSON. Error texts leave the
key out (:func:`describe`): a log line must not carry a session key.
"""

from __future__ import annotations

import math
from typing import Any

from .base import StoreError

#: What a non-UTF-8 or wrong-type value reads as: no version, so decode() rejects it.
UNREADABLE = "\ufffd|unreadable value"

# Shared by both scripts: the guard is what precedes the first "|", if that bar
# is at position 1..40 (0-based) — exactly fixguard.record.guard_of.
_GUARD = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local bar = string.find(v, '|', 1, true)
if not bar or bar < 2 or bar > 41 then bar = 1 end
"""

# KEYS[1] key; ARGV: token, live prefix ("1L"), rotating prefix ("1R").
# Live -> rotating under a new token, rest of the value and TTL kept. Returns the old value.
_FREEZE = (
    _GUARD
    + """
if bar > 1 and string.sub(v, 1, 2) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3] .. ARGV[1] .. string.sub(v, bar), 'KEEPTTL')
end
return v
"""
)

# KEYS[1] key; ARGV: expected guard, new value, TTL in ms ("" keeps the TTL).
# Overwrites only an existing key whose guard matches; returns 1 if written.
_REPLACE = (
    _GUARD
    + """
if string.sub(v, 1, bar - 1) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)

# KEYS[1] key; ARGV: expected guard, new value, TTL in ms ("" keeps the TTL).
# The handover's swap: like _REPLACE, but says why it refused: 1 if written (or
# already holding the new value: a replayed pipeline), else the current guard,
# false if the key is gone.
_SWAP = (
    _GUARD
    + """
if v == ARGV[2] then return 1 end
local current = string.sub(v, 1, bar - 1)
if current ~= ARGV[1] then return current end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)

# KEYS[1] a subject's index set; ARGV: member, TTL in ms, member to drop ("" none).
# Adds the member and makes the set live at least that long (never shortens it).
_INDEX_ADD = """
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[3] and ARGV[3] ~= '' then redis.call('SREM', KEYS[1], ARGV[3]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def ms(ttl: float) -> int:
    """Seconds to whole milliseconds, at least 1 (Redis refuses PX 0)."""
    if not ttl > 0:
        return 1
    if math.isinf(ttl):
        raise StoreError("Redis keys need a finite TTL: configure finite timeouts")
    return max(1, round(ttl * 1000))


def text(value: Any) -> str | None:
    """A reply as str; bytes that are not UTF-8 (or anything else) become UNREADABLE."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return UNREADABLE


def describe(exc: BaseException, key: str) -> str:
    """The error's class and the first line of its text, with the key cut out."""
    line = str(exc).split("\n", 1)[0]
    if key:
        line = line.replace(key, "<key>")
    line = line[:160]
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
