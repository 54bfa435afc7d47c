"""The Lua scripts of :class:`fixguard.stores.redis.RedisStore`, one key each.

Each script reads and writes only ``KEYS[1]``, so it is atomic there and runs
unchanged on Redis Cluster. The compare-and-set scripts only read the value's
guard (the part before the first ``|``), never its JSON.
"""

from __future__ import annotations

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
