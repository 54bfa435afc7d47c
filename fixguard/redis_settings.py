"""The Redis settings: one server, a Cluster, or a Sentinel-watched master, and durability.

``redis_url`` names one server, or any node of a Cluster with
``redis_cluster = true``. ``redis_sentinels`` (``host:port`` each) and
``redis_sentinel_master`` name a master that Sentinel finds and follows
through failovers; a ``redis_url`` next to them only lends its password,
database number and TLS (``rediss://``). ``redis_min_replicas`` and
``redis_wait_timeout`` say how many replicas must acknowledge, and how fast,
each write that makes an ID dead (see :mod:`fixguard.stores.replication`).
Every combination that cannot work is refused here, with what to change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .config import DEFAULT_REDIS_PREFIX, ConfigError

#: Every setting that configures the Redis store (all of them need redis_url or redis_sentinels).
REDIS_SETTINGS = (
    "redis_url",
    "redis_prefix",
    "redis_cluster",
    "redis_sentinels",
    "redis_sentinel_master",
    "redis_min_replicas",
    "redis_wait_timeout",
)
_ADDRESS = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})$")


def _var(name: str) -> str:
    return f"{name} (FIXGUARD_{name.upper()})"


def wants_redis(values: Mapping[str, Any]) -> bool:
    """Is a Redis store configured (a URL, or Sentinels)?"""
    return values.get("redis_url") is not None or bool(values.get("redis_sentinels"))


def describe(values: Mapping[str, Any], kind: str = "Redis") -> str:
    """The store in words for logs and the CLI; never the URL (it may hold a password)."""
    prefix = values.get("redis_prefix", DEFAULT_REDIS_PREFIX)
    if values.get("redis_sentinels"):
        where = f" (via Sentinel, master {values.get('redis_sentinel_master')!r})"
    elif values.get("redis_cluster"):
        where = " (Cluster)"
    else:
        where = ""
    return f"{kind}{where}, key prefix {prefix!r}"


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair, or ConfigError."""
    match = _ADDRESS.match(text.strip()) if isinstance(text, str) else None
    port = int(match.group(3)) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigError(
            f"redis_sentinels (FIXGUARD_REDIS_SENTINELS): {text!r} is not host:port, e.g. "
            "'10.0.0.5:26379' or '[::1]:26379'"
        )
    return match.group(1) or match.group(2), port


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """The Redis settings of ``values`` checked together; the keyword arguments of the store.

    Types are checked too, since Python keywords arrive unparsed.
    """
    given = {name: values[name] for name in REDIS_SETTINGS if values.get(name) is not None}
    url, sentinels = given.get("redis_url"), given.get("redis_sentinels")
    if url is not None and (not isinstance(url, str) or not url):
        raise ConfigError(f"redis_url must be a non-empty string, got {type(url).__name__}")
    if isinstance(sentinels, str):
        sentinels = [item for item in sentinels.split(",") if item.strip()]
    if sentinels is not None and not isinstance(sentinels, list | tuple):
        sentinels = list(sentinels) if isinstance(sentinels, Iterable) else sentinels
    if sentinels is not None and (not isinstance(sentinels, list | tuple) or not sentinels):
        raise ConfigError(f"{_var('redis_sentinels')} must be a list of host:port, e.g. ['10.0.0.5:26379']")
    master = given.get("redis_sentinel_master")
    if url is None and not sentinels:
        if given:
            names = ", ".join(_var(name) for name in given)
            verb = "is" if len(given) == 1 else "are"
            raise ConfigError(
                f"{names} {verb} set but redis_url (FIXGUARD_REDIS_URL) is not, nor redis_sentinels "
                "(FIXGUARD_REDIS_SENTINELS): set redis_url for a RedisStore, or remove "
                + ", ".join(given)
            )
        return {}
    for name in ("redis_prefix", "redis_sentinel_master"):
        if name in given and (not isinstance(given[name], str) or not given[name]):
            raise ConfigError(f"{_var(name)} must be a non-empty string, got {given[name]!r}")
    cluster = given.get("redis_cluster", False)
    if not isinstance(cluster, bool):
        raise ConfigError(f"{_var('redis_cluster')} must be true or false, got {cluster!r}")
    if sentinels and cluster:
        raise ConfigError(
            "redis_cluster and redis_sentinels are both set: Redis Cluster fails over by itself and "
            "has no Sentinel; keep redis_cluster (with redis_url naming any node) or the Sentinels"
        )
    if sentinels and master is None:
        raise ConfigError(
            "redis_sentinels is set but redis_sentinel_master (FIXGUARD_REDIS_SENTINEL_MASTER) is not: "
            "set it to the name the Sentinels monitor the master under, e.g. 'mymaster'"
        )
    if master is not None and not sentinels:
        raise ConfigError(
            "redis_sentinel_master is set but redis_sentinels (FIXGUARD_REDIS_SENTINELS) is not: "
            "list the Sentinels as host:port, e.g. ['10.0.0.5:26379', '10.0.0.6:26379']"
        )
    if cluster and url is None:
        raise ConfigError(
            "redis_cluster is set but redis_url (FIXGUARD_REDIS_URL) is not: name any node of the Cluster"
        )
    replicas = given.get("redis_min_replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
        raise ConfigError(
            f"{_var('redis_min_replicas')} must be a whole number >= 0 (0: never wait for replicas), "
            f"got {replicas!r}"
        )
    wait = given.get("redis_wait_timeout", 0.1)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait < math.inf:
        raise ConfigError(f"{_var('redis_wait_timeout')} must be a positive number of seconds, got {wait!r}")
    return {
        "url": url,
        "prefix": given.get("redis_prefix", DEFAULT_REDIS_PREFIX),
        "cluster": cluster,
        "sentinels": tuple(parse_address(item) for item in sentinels or ()),
        "master": master,
        "min_replicas": replicas,
        "wait_timeout": float(wait),
    }


def make_store(values: Mapping[str, Any], asynchronous: bool = False) -> Any:
    """The Redis store the settings describe, or None (no Redis configured: a MemoryStore).

    ``asynchronous``: the ASGI middleware's AsyncRedisStore, on the same three
    topologies and with the same durability settings.
    """
    options = check(values)
    if not options:
        return None
    url = options["url"]
    try:
        if asynchronous:
            from .stores.redis_async_connect import async_store_from_options

            return async_store_from_options(**options)
        from .stores.redis_connect import store_from_options

        return store_from_options(**options)
    except ImportError:
        raise ConfigError("the Redis settings need redis-py: pip install 'fixguard[redis]'") from None
    except ValueError as exc:  # redis-py's URL parser; its message never needs the URL itself
        reason = str(exc).replace(url, "<redis_url>") if url else str(exc)
        raise ConfigError(
            f"redis_url (FIXGUARD_REDIS_URL) is not a URL redis-py accepts ({reason}): use "
            "redis://[:password@]host:port/db, rediss://… for TLS, or unix:///path/to/socket?db=0"
        ) from None
