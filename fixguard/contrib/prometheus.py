"""Prometheus metrics for a FixGuard: ``Metrics(registry).instrument(guard)``.

``pip install 'fixguard[prometheus]'``. On the registry you give
(prometheus_client's default one otherwise):

* ``fixguard_events_total{kind}`` — every security event, by kind
  (``fixation_blocked``, ``rotation``, ``race_blocked`` …);
* ``fixguard_rejections_total{status,code}`` — requests fixguard refused:
  401 ``session_ended``/``token_invalid``, 409 ``session_changed``, 503 ``store_unavailable``;
* ``fixguard_store_seconds{operation}`` — a histogram of store call latency;
* ``fixguard_settle_waits_total`` — logins that froze a live session and waited
  ``settle_time`` before the app ran.

The store is timed by wrapping it (:class:`TimedStore`), so a guard without
metrics pays nothing. Events reach the metrics through the guard's event hook,
chained before the app's own ``on_event``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from ..record import LIVE, guard_of
from ..responses import Reason

if TYPE_CHECKING:
    from ..events import Event
    from ..middleware import FixGuard
    from ..stores.base import Store

__all__ = ["STORE_BUCKETS", "Metrics", "TimedStore"]

#: Seconds: a Redis round trip on a LAN is about 0.0005; the RedisStore timeout is 1.
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """fixguard's metrics on one registry; :meth:`instrument` attaches them to a guard.

    :param registry: where the metrics are registered (prometheus_client's default).
    :param namespace: the metric name prefix.
    """

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "fixguard") -> None:
        registry = REGISTRY if registry is None else registry
        self.events = Counter(
            f"{namespace}_events", "fixguard security events, by kind", ["kind"], registry=registry
        )
        self.rejections = Counter(
            f"{namespace}_rejections",
            "Requests fixguard refused (401 ended session or token, 409 race, 503 store down)",
            ["status", "code"],
            registry=registry,
        )
        self.store_seconds = Histogram(
            f"{namespace}_store_seconds",
            "Latency of fixguard's store calls, by operation",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.settle_waits = Counter(
            f"{namespace}_settle_waits",
            "Logins that froze a live session and waited settle_time before the app ran",
            registry=registry,
        )

    def on_event(self, event: Event) -> None:
        """Count one event (usable as ``on_event`` on its own)."""
        self.events.labels(event.kind).inc()

    def on_refusal(self, reason: Reason) -> None:
        """Count one refusal."""
        self.rejections.labels(str(reason.status), reason.code).inc()

    def instrument(self, guard: FixGuard) -> FixGuard:
        """Count ``guard``'s events and refusals and time its store; returns the guard."""
        if isinstance(guard.store, TimedStore):
            raise ValueError("this guard is already instrumented")
        guard.store = cast("Store", TimedStore(guard.store, self, guard.settings.settle_time))
        guard.refusals.listeners.append(self.on_refusal)
        app_hook = guard.events.hook

        def hook(event: Event) -> None:
            self.on_event(event)
            if app_hook is not None:
                app_hook(event)

        guard.events.hook = hook
        return guard


class TimedStore:
    """A store that reports each call's latency, and the freezes that lead to a settle wait.

    Every public method of the wrapped store is passed through, timed under its
    name; attributes (``prefix``) pass through untouched.
    """

    def __init__(self, store: Any, metrics: Metrics, settle_time: float = 0.0) -> None:
        self.store = store
        self._metrics = metrics
        self._settle = settle_time > 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        timed = self._timed(name, attribute)
        setattr(self, name, timed)  # later calls skip __getattr__
        return timed

    def _timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        histogram = self._metrics.store_seconds.labels(name)
        counts_settle = name == "freeze" and self._settle
        settle_waits = self._metrics.settle_waits

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = call(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - start)
            if counts_settle and isinstance(result, str) and guard_of(result)[1:2] == LIVE:
                settle_waits.inc()  # a live record frozen by a login: the login now waits
            return result

        return timed
