"""What the Cluster and Sentinel tests share: a topology as fixguard settings, and a store on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fixguard.redis_settings import make_store
from fixguard.stores.redis import RedisStore

from .topologies import SENTINEL_MASTER, ClusterGroup, SentinelGroup

TOPOLOGIES = ("cluster", "sentinel")


@dataclass
class Topology:
    """One of the two groups, and the settings that name it."""

    name: str
    group: ClusterGroup | SentinelGroup
    settings: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        """The same settings as FIXGUARD_* variables."""
        if self.name == "cluster":
            return {"FIXGUARD_REDIS_URL": self.settings["redis_url"], "FIXGUARD_REDIS_CLUSTER": "true"}
        return {
            "FIXGUARD_REDIS_SENTINELS": ",".join(self.settings["redis_sentinels"]),
            "FIXGUARD_REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
        }

    def store(self, prefix: str, **extra: Any) -> RedisStore:
        store = make_store({**self.settings, "redis_prefix": prefix, **extra})
        assert isinstance(store, RedisStore)
        return store


def topology(request: pytest.FixtureRequest, name: str) -> Topology:
    """The healthy group ``name`` (a failover test before may have left it mid-heal)."""
    if name == "cluster":
        cluster: ClusterGroup = request.getfixturevalue("redis_cluster")
        cluster.wait_healthy(30)
        return Topology(name, cluster, {"redis_url": cluster.url, "redis_cluster": True})
    sentinel: SentinelGroup = request.getfixturevalue("redis_sentinel")
    sentinel.wait_healthy(30)
    return Topology(
        name, sentinel, {"redis_sentinels": sentinel.addresses, "redis_sentinel_master": SENTINEL_MASTER}
    )
