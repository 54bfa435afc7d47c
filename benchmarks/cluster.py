"""What Redis Cluster and WAIT cost fixguard: read-only overhead and round trips, and a login's WAIT.

    .venv/bin/python benchmarks/cluster.py            # the table
    .venv/bin/python benchmarks/cluster.py --quick    # fewer calls (a smoke run)
    .venv/bin/python benchmarks/cluster.py --json     # machine-readable

It starts its own servers on loopback (persistence off, in temp dirs): one
master with one replica, and a Redis Cluster of 3 masters and 3 replicas
(``redis-cli --cluster create``). FixGuard wraps the benchmarks' bare app
(``benchmarks/_common.py``) with a RedisStore built from settings, as a
deployment builds it (``redis_url``, ``redis_cluster``, ``redis_min_replicas``).

Cases: ``read`` is a read-only request of a session (the common request);
``login`` is a ``POST /login`` that rotates an existing session (freeze, app,
handover) with ``settle_time=0``. Each runs on the single master and on the
Cluster, and the login with ``redis_min_replicas`` 0 (no WAIT) and 1. Times
are the median of the repeats' mean µs per request, minus the bare app's.

**Round trips** are counted in the client: every ``send_packed_command`` of
redis-py's connections during a separate, untimed batch is one request sent
and answered (a pipeline is one; a cluster pipeline is one per node it
touches, sent in parallel). ``WAIT`` calls are counted by the servers
(``INFO commandstats``, summed over every node).

Targets: read-only through the Cluster client is 1 round trip, as on a
single Redis; a login with WAIT costs no more round trips than without on a
single master (WAIT rides in the write's pipeline). Exit 0 if both hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import SECRET, bare_app, free_port, machine
from fixguard import FixGuard
from fixguard.redis_settings import make_store

Env = dict[str, Any]
COMMON = [
    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
]  # fmt: skip


class Servers:
    """redis-server processes on free loopback ports; all killed on exit."""

    def __init__(self) -> None:
        executable, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if executable is None or cli is None:
            raise SystemExit("redis-server and redis-cli are needed (Debian: apt-get install redis-server)")
        self.executable, self.cli = executable, cli
        self.workdir = Path(tempfile.mkdtemp(prefix="fixguard-bench-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str) -> int:
        port = free_port()
        node_dir = self.workdir / str(port)
        node_dir.mkdir()
        with (node_dir / "log").open("ab") as log:
            command = [self.executable, "--port", str(port), "--dir", str(node_dir), *COMMON, *extra]
            self.procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        _until(lambda: _ask(port, "PING"))
        return port

    def pair(self) -> str:
        """One master with one replica that acknowledges writes; the master's URL."""
        master = self.start()
        self.start("--replicaof", "127.0.0.1", str(master))
        _until(lambda: _acknowledged(master))
        return f"redis://127.0.0.1:{master}/0"

    def cluster(self) -> str:
        """3 masters + 3 replicas; a seed node's URL once every master's replica acknowledges."""
        ports = [self.start("--cluster-enabled", "yes", "--cluster-port", str(free_port())) for _ in range(6)]
        subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        def ready() -> bool:
            masters = [p for p in ports if _ask(p, "ROLE")[0] == "master"]
            slots = _ask(ports[0], "CLUSTER", "SLOTS")
            return len(masters) == 3 and all(len(s) >= 4 for s in slots)  # listed: each replica has acked

        _until(ready)
        return f"redis://127.0.0.1:{ports[0]}/0"

    def commandstat(self, name: str) -> int:
        total = 0
        for proc in self.procs:
            port = int(proc.args[2])  # type: ignore[index]
            stats = _ask(port, "INFO", "commandstats")  # parsed by redis-py
            total += int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
        return total

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _ask(port: int, *command: Any) -> Any:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def _acknowledged(port: int) -> bool:
    """A write here reaches a replica that answers WAIT (a fresh one takes about a second)."""
    _ask(port, "SET", "bench:probe", "1")
    return int(_ask(port, "WAIT", 1, 200)) >= 1


def _until(check: Callable[[], Any], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            error = exc
        else:
            error = None
        if time.monotonic() > deadline:
            raise SystemExit(f"the benchmark's Redis servers did not come up ({error!r})")
        time.sleep(0.05)


@contextlib.contextmanager
def counting_sends() -> Iterator[list[int]]:
    """Count redis-py's ``send_packed_command`` calls: one per request sent (pipelines included)."""
    from redis.connection import AbstractConnection

    original = AbstractConnection.send_packed_command
    count = [0]

    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def environ(path: str, method: str = "GET", cookie: str | None = None) -> Env:
    from werkzeug.test import EnvironBuilder

    headers = {"Host": "bench.local"}
    if cookie:
        headers["Cookie"] = cookie
    builder = EnvironBuilder(path=path, method=method, headers=headers)
    try:
        env: Env = builder.get_environ()
    finally:
        builder.close()
    return env


def run(app: Any, envs: Iterable[Env]) -> list[str]:
    """Call ``app`` per environ; the fixguard cookie each set (or "")."""
    out = []
    seen: list[str] = []

    def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen.extend(v for k, v in headers if k.lower() == "set-cookie" and v.startswith("fixguard="))

    for env in envs:
        seen.clear()
        body = app(env.copy(), sr)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()
        out.append(seen[0].split(";", 1)[0] if seen else "")
    return out


def timed(app: Any, envs: list[Env]) -> float:
    start = time.perf_counter()
    run(app, envs)
    return (time.perf_counter() - start) / len(envs) * 1e6


def measure(
    servers: Servers, url: str, cluster: bool, min_replicas: int, n: int, repeats: int
) -> dict[str, Any]:
    store = make_store({"redis_url": url, "redis_cluster": cluster, "redis_min_replicas": min_replicas})
    assert store is not None
    # default settings for reads; settle_time=0 for logins only (a read slower than settle_time
    # re-reads its record, so 0 would charge every read a second GET), as benchmarks/overhead.py does
    guard = FixGuard(bare_app, SECRET, secure=False, store=store)
    login_guard = FixGuard(bare_app, SECRET, secure=False, store=store, settle_time=0)

    def sessions(k: int) -> list[str]:
        return run(login_guard, [environ("/login", "POST")] * k)  # a logged-in session each

    reader = environ("/", cookie=sessions(1)[0])
    run(guard, [reader] * n)  # warm the pools and the caches
    read_us = statistics.median(timed(guard, [reader] * n) for _ in range(repeats))
    login_us = statistics.median(
        timed(login_guard, [environ("/login", "POST", cookie=c) for c in sessions(n // 4)])
        for _ in range(repeats)
    )
    k = 50
    with counting_sends() as sends:
        run(guard, [reader] * k)
    read_trips = sends[0] / k
    prepared = [environ("/login", "POST", cookie=c) for c in sessions(k)]
    waits = servers.commandstat("wait")
    with counting_sends() as sends:
        run(login_guard, prepared)
    login_trips = sends[0] / k
    login_waits = (servers.commandstat("wait") - waits) / k
    store.close()  # type: ignore[attr-defined]
    return {
        "read_us": read_us,
        "login_us": login_us,
        "read_round_trips": read_trips,
        "login_round_trips": login_trips,
        "login_waits": login_waits,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    n, repeats = (200, 3) if args.quick else (2000, 5)
    servers = Servers()
    try:
        single, cluster = servers.pair(), servers.cluster()
        bare = statistics.median(timed(bare_app, [environ("/")] * n) for _ in range(repeats))
        rows = {
            f"{name}_wait{m}": measure(servers, url, name == "cluster", m, n, repeats)
            for name, url in (("single", single), ("cluster", cluster))
            for m in (0, 1)
        }
    finally:
        servers.stop()
    for row in rows.values():
        row["read_overhead_us"] = row["read_us"] - bare
        row["login_overhead_us"] = row["login_us"] - bare
    wait_cost = {
        name: rows[f"{name}_wait1"]["login_us"] - rows[f"{name}_wait0"]["login_us"]
        for name in ("single", "cluster")
    }
    targets = [
        {
            "target": "read-only through the Cluster client: 1 round trip, as on a single Redis",
            "pass": rows["cluster_wait1"]["read_round_trips"]
            == rows["single_wait1"]["read_round_trips"]
            == 1,
        },
        {
            "target": "a login with WAIT: no more round trips than without (single master)",
            "pass": rows["single_wait1"]["login_round_trips"] == rows["single_wait0"]["login_round_trips"],
        },
    ]
    report = {
        "machine": machine(),
        "bare_us": bare,
        "rows": rows,
        "wait_cost_us": wait_cost,
        "targets": targets,
    }
    report["all_pass"] = all(t["pass"] for t in targets)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"bare app: {bare:.1f} µs/request; {n} requests x {repeats} repeats, median")
        print(f"{'case':<16}{'read +µs':>10}{'RT':>6}{'login +µs':>11}{'RT':>6}{'WAITs':>7}")
        for key, row in rows.items():
            print(
                f"{key:<16}{row['read_overhead_us']:>10.1f}{row['read_round_trips']:>6.2f}"
                f"{row['login_overhead_us']:>11.1f}{row['login_round_trips']:>6.2f}{row['login_waits']:>7.2f}"
            )
        for name, cost in wait_cost.items():
            print(f"WAIT on a login ({name}): {cost:+.1f} µs")
        for target in targets:
            print(f"[{'pass' if target['pass'] else 'FAIL'}] {target['target']}")
    return 0 if report["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
