"""``fixguard.contrib.prometheus``: the metrics counted while the attack is played, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from webtest import TestApp

from fixguard import Event, FixGuard, MemoryStore
from fixguard.contrib.prometheus import Metrics, TimedStore
from fixguard.stores.base import Store

from .apps import SECRET, VulnerableApp, fg_cookie, guard
from .attack import fixation
from .test_refusals import DownStore, RetiredWhileRunning


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    sample = registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def test_metrics_count_the_attack(store: Store) -> None:
    registry = CollectorRegistry()
    seen: list[Event] = []
    g = Metrics(registry).instrument(guard(VulnerableApp(), store=store, on_event=seen.append))
    outcome = fixation(g, lambda victim: victim.post("/login", {"password": "secret"}))
    assert outcome.victim_after.text == "user=alice" and outcome.replay.status_int == 401

    assert value(registry, "fixguard_events_total", kind="fixation_blocked") == 1
    assert value(registry, "fixguard_events_total", kind="rotation") == 1
    assert value(registry, "fixguard_events_total", kind="session_created") == 1
    assert value(registry, "fixguard_rejections_total", status="401", code="session_ended") == 1
    assert value(registry, "fixguard_settle_waits_total") == 1  # the login froze the planted session
    assert value(registry, "fixguard_store_seconds_count", operation="freeze") == 1
    assert value(registry, "fixguard_store_seconds_count", operation="get") >= 2  # victim's read, the replay
    assert value(registry, "fixguard_store_seconds_sum", operation="get") > 0
    assert [e.kind for e in seen].count("fixation_blocked") == 1  # the app's own hook still runs
    exposition = generate_latest(registry).decode()
    assert 'fixguard_events_total{kind="fixation_blocked"} 1.0' in exposition


def test_409_and_503_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    app = RetiredWhileRunning()
    app.guard = g = metrics.instrument(guard(app, settle_time=0))
    client = TestApp(g)
    cookie = fg_cookie(client.get("/"))
    headers = {"Cookie": f"fixguard={cookie}"}
    client.get("/slow", headers=headers, extra_environ={"fixguard.test.cookie": cookie or ""}, status=409)
    assert value(registry, "fixguard_rejections_total", status="409", code="session_changed") == 1
    assert value(registry, "fixguard_events_total", kind="race_blocked") == 1

    down = metrics.instrument(guard(VulnerableApp(), store=DownStore()))
    TestApp(down).get("/", headers=headers, status=503)
    assert value(registry, "fixguard_rejections_total", status="503", code="store_unavailable") == 1
    assert value(registry, "fixguard_store_seconds_count", operation="get") >= 2


def test_no_settle_wait_is_counted_without_a_live_session_or_with_settle_time_zero() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    g = metrics.instrument(guard(VulnerableApp()))
    TestApp(g).post("/login", {"password": "secret"})  # no session yet: nothing to freeze
    quick = Metrics(other := CollectorRegistry()).instrument(guard(VulnerableApp(), settle_time=0))
    client = TestApp(quick)
    client.get("/")
    client.post("/login", {"password": "secret"})
    assert value(registry, "fixguard_settle_waits_total") == 0
    assert value(other, "fixguard_settle_waits_total") == 0
    assert value(other, "fixguard_store_seconds_count", operation="freeze") == 1  # it did freeze


def test_without_metrics_the_store_is_not_wrapped() -> None:
    g = guard(VulnerableApp())
    assert type(g.store) is MemoryStore
    instrumented = Metrics(CollectorRegistry()).instrument(guard(VulnerableApp()))
    assert isinstance(instrumented.store, TimedStore)
    with pytest.raises(ValueError, match="already instrumented"):
        Metrics(CollectorRegistry(), namespace="again").instrument(instrumented)


def test_the_timed_store_passes_everything_through(redis_server: Any, redis_prefix: str) -> None:
    from fixguard import RedisStore

    inner = RedisStore.from_url(redis_server.url, prefix=redis_prefix)
    g = Metrics(CollectorRegistry()).instrument(FixGuard(VulnerableApp(), SECRET, secure=False, store=inner))
    store: Any = g.store
    assert store.prefix == redis_prefix and store.ping() is True
    TestApp(g).get("/")
    assert store.sessions("nobody") == []
    store.close()


def test_metrics_live_on_the_registry_given() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first)
    Metrics(second)  # no clash: each registry has its own
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(first)
