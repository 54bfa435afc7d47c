"""Round trips of a batch of requests, counted by Redis and by redis-py.

Redis sees commands: ``INFO commandstats`` counts each one (also those a Lua
script runs inside, which ``MONITOR`` tags ``lua`` so they can be taken out),
and cannot tell a non-transactional pipeline of three commands from three
round trips. redis-py sees the writes: every command, pipeline or ``MULTI``
block leaves through one call of ``AbstractConnection.send_packed_command``
and its replies are read before the next call, so one call is one round trip
the request waited for. :class:`RoundTripCounter` reports both for one batch.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from _common import RedisServer


class SendCounter:
    """Real round trips: calls of redis-py's ``send_packed_command`` while the block runs.

    Patches ``redis.connection.AbstractConnection`` (every plain, SSL and
    unix-socket connection inherits the method) for the block only, and counts
    per connection; ``exclude`` names connections that are the harness's own.
    A health-check ``PING`` redis-py sends first is a round trip too, and is
    counted as one. Not thread-safe: for one thread's batch.
    """

    def __init__(self, exclude: Iterable[Any] = ()) -> None:
        self.exclude = {id(c) for c in exclude if c is not None}
        self.by_connection: Counter[int] = Counter()
        self._original: Any = None

    @property
    def total(self) -> int:
        return sum(self.by_connection.values())

    def __enter__(self) -> SendCounter:
        from redis.connection import AbstractConnection

        original = AbstractConnection.send_packed_command
        counts, exclude = self.by_connection, self.exclude

        def counted(conn: Any, *args: Any, **kwargs: Any) -> Any:
            if id(conn) not in exclude:
                counts[id(conn)] += 1
            return original(conn, *args, **kwargs)

        self._original = original
        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from redis.connection import AbstractConnection

        AbstractConnection.send_packed_command = self._original  # type: ignore[method-assign]


class RoundTripCounter:
    """Round trips of a batch, counted by the server and by the client.

    Server: ``INFO commandstats`` minus the Lua-inner commands ``MONITOR``
    shows (and the commands of a ``MULTI`` block beyond its one), with
    ``MONITOR``'s own tally as a cross-check; it counts each command of a
    non-transactional pipeline apart. Client: :class:`SendCounter` over the
    same batch, ``real_round_trips``, where a pipeline is one.
    """

    ADMIN = frozenset(("config|resetstat", "info"))

    def __init__(self, server: RedisServer) -> None:
        self.admin = server.client(single_connection_client=True, socket_timeout=10)
        self.admin_port = str(self.admin.client_info()["addr"]).rsplit(":", 1)[1]
        self.monitor_client = server.client(socket_timeout=10)

    def measure(self, run: Callable[[], None], k: int) -> dict[str, Any]:
        marker = f"fixguard-bench-end-{secrets.token_hex(4)}"
        direct: Counter[str] = Counter()
        inner: Counter[str] = Counter()
        transactions: dict[str, list[str]] = {}  # client port -> commands queued since its MULTI
        folded = 0  # commandstats calls that a MULTI ... EXEC block adds beyond its one round trip
        with self.monitor_client.monitor() as mon:
            self.admin.config_resetstat()
            with SendCounter(exclude=(self.admin.connection, mon.connection)) as sends:
                run()
            stats = self.admin.info("commandstats")
            self.admin.echo(marker)
            while True:
                c = mon.next_command()
                words = c["command"].split(" ")
                name = words[0].upper()
                if c["client_type"] == "lua":
                    inner[name] += 1
                    continue
                if name == "ECHO" and marker in c["command"]:
                    break
                port = c["client_port"]
                if port == self.admin_port:
                    continue
                if name == "SET" and any(w.upper() == "NX" for w in words[3:]):
                    name = "SET NX"
                if port in transactions:
                    if name in ("EXEC", "DISCARD"):
                        block = transactions.pop(port)
                        direct[f"MULTI[{'+'.join(block)}]"] += 1
                        folded += len(block) + 1
                    else:
                        transactions[port].append(name)
                    continue
                if name == "MULTI":
                    transactions[port] = []
                    continue
                direct[name] += 1
        total = sum(
            int(v["calls"]) for k_, v in stats.items() if k_.removeprefix("cmdstat_") not in self.ADMIN
        )
        from_stats = (total - sum(inner.values()) - folded) / k
        from_monitor = sum(direct.values()) / k
        return {
            "real_round_trips": sends.total / k,
            "connections": len(sends.by_connection),
            "round_trips": from_stats,
            "round_trips_monitor": from_monitor,
            "agree": abs(from_stats - from_monitor) < 1e-9,
            "commands": {n: c / k for n, c in direct.items()},
            "script_inner": {n: c / k for n, c in inner.items()},
        }

    def close(self) -> None:
        self.admin.close()
        self.monitor_client.close()
