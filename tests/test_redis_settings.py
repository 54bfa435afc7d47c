"""The Redis topology and durability settings: Python, TOML and FIXGUARD_* alike, and refused when
they cannot work. Stores are built against the tests' own servers (no Redis is asked at 6379)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixguard import ConfigError, FixGuard
from fixguard.config import read_deployment
from fixguard.redis_settings import check, make_store, parse_address
from fixguard.stores.redis import RedisStore

from .apps import SECRET, echo_app


def env(**changes: str) -> dict[str, str]:
    return {"FIXGUARD_SECRET_KEY": SECRET, "FIXGUARD_SECURE": "false", **changes}


def refused(**changes: str) -> str:
    with pytest.raises(ConfigError) as caught:
        FixGuard.from_env(echo_app, env(**changes))
    return str(caught.value)


def test_the_three_forms_read_the_same(tmp_path: Path) -> None:
    variables = {
        "FIXGUARD_REDIS_SENTINELS": "127.0.0.1:26379, [::1]:26380",
        "FIXGUARD_REDIS_SENTINEL_MASTER": "mymaster",
        "FIXGUARD_REDIS_MIN_REPLICAS": "2",
        "FIXGUARD_REDIS_WAIT_TIMEOUT": "0.25",
    }
    from_env = read_deployment(variables)
    path = tmp_path / "f.toml"
    path.write_text(
        '[fixguard]\nredis_sentinels = ["127.0.0.1:26379", "[::1]:26380"]\n'
        'redis_sentinel_master = "mymaster"\nredis_min_replicas = 2\nredis_wait_timeout = 0.25\n'
    )
    from_file = read_deployment({}, path)
    assert check(from_env) == check(from_file)
    options = check(from_env)
    assert options["sentinels"] == (("127.0.0.1", 26379), ("::1", 26380))
    assert (
        options["min_replicas"] == 2 and options["wait_timeout"] == 0.25 and options["master"] == "mymaster"
    )
    assert read_deployment({"FIXGUARD_REDIS_CLUSTER": "yes", "FIXGUARD_REDIS_URL": "redis://h:1"})[
        "redis_cluster"
    ]


def test_defaults() -> None:
    options = check({"redis_url": "redis://h:1/0"})
    assert options["min_replicas"] is None  # decided from the topology
    assert options["wait_timeout"] == 0.1 and options["cluster"] is False and options["sentinels"] == ()
    assert check({}) == {}


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"FIXGUARD_REDIS_SENTINELS": "127.0.0.1:26379"}, "but redis_sentinel_master (FIXGUARD"),
        ({"FIXGUARD_REDIS_SENTINEL_MASTER": "m"}, "is set but redis_url (FIXGUARD_REDIS_URL) is not"),
        (
            {"FIXGUARD_REDIS_URL": "redis://h:1", "FIXGUARD_REDIS_SENTINEL_MASTER": "m"},
            "redis_sentinel_master is set but redis_sentinels (FIXGUARD_REDIS_SENTINELS) is not",
        ),
        (
            {"FIXGUARD_REDIS_URL": "redis://h:1", "FIXGUARD_REDIS_CLUSTER": "1",
             "FIXGUARD_REDIS_SENTINELS": "h:26379", "FIXGUARD_REDIS_SENTINEL_MASTER": "m"},
            "redis_cluster and redis_sentinels are both set",
        ),
        ({"FIXGUARD_REDIS_CLUSTER": "true"}, "is set but redis_url (FIXGUARD_REDIS_URL) is not"),
        ({"FIXGUARD_REDIS_MIN_REPLICAS": "1"}, "redis_min_replicas (FIXGUARD_REDIS_MIN_REPLICAS) is set"),
        ({"FIXGUARD_REDIS_URL": "redis://h:1", "FIXGUARD_REDIS_MIN_REPLICAS": "-1"}, "a whole number >= 0"),
        ({"FIXGUARD_REDIS_URL": "redis://h:1", "FIXGUARD_REDIS_MIN_REPLICAS": "one"}, "a whole number"),
        ({"FIXGUARD_REDIS_URL": "redis://h:1", "FIXGUARD_REDIS_WAIT_TIMEOUT": "0"}, "positive number"),
        (
            {"FIXGUARD_REDIS_SENTINELS": "host-without-port", "FIXGUARD_REDIS_SENTINEL_MASTER": "m"},
            "'host-without-port' is not host:port",
        ),
        (
            {"FIXGUARD_REDIS_SENTINELS": "h:99999", "FIXGUARD_REDIS_SENTINEL_MASTER": "m"},
            "'h:99999' is not host:port",
        ),
    ],
)  # fmt: skip
def test_what_cannot_work_is_refused_saying_what_to_change(changes: dict[str, str], expect: str) -> None:
    assert expect in refused(**changes)


def test_python_keywords(redis_server: Any) -> None:
    redis_server.start()
    guard = FixGuard(
        echo_app, SECRET, redis_url=redis_server.url, redis_min_replicas=0, redis_wait_timeout=0.3
    )
    store = guard.store
    assert isinstance(store, RedisStore) and store.min_replicas == 0 and store.wait_timeout == 0.3
    store.close()
    with pytest.raises(ConfigError, match="redis_sentinel_master"):
        FixGuard(echo_app, SECRET, redis_sentinels=("127.0.0.1:1",))
    with pytest.raises(ConfigError, match="must be true or false"):
        FixGuard(echo_app, SECRET, redis_url=redis_server.url, redis_cluster="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="whole number"):
        FixGuard(echo_app, SECRET, redis_url=redis_server.url, redis_min_replicas=True)
    with pytest.raises(ConfigError, match="store= and redis_sentinels= were both given"):
        from fixguard import MemoryStore

        FixGuard(echo_app, SECRET, store=MemoryStore(), redis_sentinels=["h:1"], redis_sentinel_master="m")


def test_parse_address() -> None:
    assert parse_address("redis-a.internal:26379") == ("redis-a.internal", 26379)
    assert parse_address("[2001:db8::1]:26379") == ("2001:db8::1", 26379)
    for bad in ("", ":26379", "h:", "h:0", "a b:1", "http://h:1"):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_a_url_beside_sentinels_lends_its_password_and_database_only() -> None:
    store = make_store(
        {
            "redis_sentinels": ["127.0.0.1:1"],  # nothing listens: the client is built, not used
            "redis_sentinel_master": "m",
            "redis_url": "redis://:pw@ignored-host:6379/3",
            "redis_min_replicas": 1,
        }
    )
    assert isinstance(store, RedisStore)
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["password"] == "pw" and kwargs["db"] == 3 and "host" not in kwargs
    assert kwargs["socket_timeout"] >= 1.0 and kwargs["retry"] is not None
    store.close()


def test_the_asgi_store_takes_the_durability_and_sentinel_settings(redis_server: Any) -> None:
    """FixGuardMiddleware builds an AsyncRedisStore that waits as told, on a URL or through Sentinel."""
    import redis.asyncio as aredis
    from redis.asyncio.sentinel import SentinelConnectionPool

    from fixguard.asgi import FixGuardMiddleware
    from fixguard.stores.redis_async import AsyncRedisStore

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never called
        raise AssertionError

    redis_server.start()
    g = FixGuardMiddleware(
        app, SECRET, redis_url=redis_server.url, redis_min_replicas=1, redis_wait_timeout=0.5
    )
    assert isinstance(g.store, AsyncRedisStore)
    assert (g.store.min_replicas, g.store.wait_timeout) == (1, 0.5)
    assert g.store.client.connection_pool.connection_kwargs["socket_timeout"] >= 1.0  # room for WAIT
    from_env = FixGuardMiddleware.from_env(
        app, env(FIXGUARD_REDIS_URL=redis_server.url, FIXGUARD_REDIS_MIN_REPLICAS="0")
    )
    assert isinstance(from_env.store, AsyncRedisStore) and from_env.store.min_replicas == 0
    watched = FixGuardMiddleware(
        app,
        SECRET,
        redis_sentinels=["127.0.0.1:1"],  # nothing listens: the client is built, not used
        redis_sentinel_master="m",
        redis_url="redis://:pw@ignored-host:6379/3",
    )
    assert isinstance(watched.store, AsyncRedisStore) and watched.store.min_replicas is None
    client = watched.store.client
    assert type(client) is aredis.Redis and isinstance(client.connection_pool, SentinelConnectionPool)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["password"] == "pw" and kwargs["db"] == 3 and "host" not in kwargs
