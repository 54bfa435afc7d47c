"""Redis's own distributed setups on loopback, started by the tests that need them.

:class:`ClusterGroup` is a Redis Cluster of 3 masters and 3 replicas
(``cluster-node-timeout`` 1 s), created with ``redis-cli --cluster create``.
:class:`SentinelGroup` is one master, two replicas and three Sentinels
(``down-after-milliseconds`` 1000) watching it as ``mymaster``; Sentinels are
``redis-server --sentinel``, the binary Debian's ``redis-sentinel`` links to.
Every process listens on a free loopback port, keeps no data on disk, and is
killed when the group stops. :meth:`kill` is ``kill -9``; :meth:`revive`
starts a killed node again on its port (it rejoins as a replica).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from .conftest import _free_port

SENTINEL_MASTER = "mymaster"
# no persistence; replicas sync at once (no diskless delay) and report their offset every second
COMMON = [
    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no",
    "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
]  # fmt: skip


def wait_for(what: str, check: Callable[[], bool], within: float, log: Callable[[], str] = str) -> float:
    """Poll ``check`` every 20 ms until true; the seconds it took. Fails the test after ``within``."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"{what}: not within {within}s\n{log()}")
        time.sleep(0.02)


class Node:
    """One redis-server (or Sentinel) process on a fixed loopback port (and a cluster bus port)."""

    def __init__(
        self,
        executable: str,
        workdir: Path,
        name: str,
        extra: list[str],
        bus: bool = False,
        follow: Node | None = None,
    ) -> None:
        self.executable = executable
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = _free_port()
        self.bus_port = _free_port() if bus else 0
        self.extra = extra
        self.follow = follow  # the master this node starts as a replica of
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        bus = ["--cluster-port", str(self.bus_port)] if self.bus_port else []
        follow = ["--replicaof", "127.0.0.1", str(self.follow.port)] if self.follow else []
        ports = ["--port", str(self.port), "--dir", str(self.dir)]
        return [self.executable, *ports, *COMMON, *bus, *follow, *self.extra]

    def start(self, new_ports: bool = False) -> None:
        """Start, and wait until it answers PING. ``new_ports``: before a group is formed, a port
        taken since it was picked (the machine is shared) is replaced by another, up to 3 times."""
        if self.alive:
            return
        for attempt in range(3):
            with (self.dir / "log").open("ab") as log:
                self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while self.alive and time.monotonic() < deadline:
                with contextlib.suppress(redis.RedisError, OSError):
                    if self.ask("PING"):
                        return
                time.sleep(0.02)
            if self.alive or not new_ports or attempt == 2:
                pytest.fail(f"{self.name} on port {self.port} did not start:\n{self.log()}")
            self.port = _free_port()
            self.bus_port = _free_port() if self.bus_port else 0

    def pause(self) -> None:
        """SIGSTOP: connected, silent (a replica that acknowledges nothing)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """kill -9, waited for."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 2)
        kwargs.setdefault("socket_connect_timeout", 1)
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **kwargs)

    def ask(self, *command: Any) -> Any:
        client = self.client()
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def role(self) -> str:
        return str(self.ask("ROLE")[0])

    def acknowledged(self, replicas: int) -> bool:
        """A write here is acknowledged by ``replicas`` replicas (``WAIT``): they are really following.

        A replica that has just synced may leave its first ``GETACK`` unanswered for a while.
        """
        client = self.client()
        try:
            client.set("topology:probe", "1")
            return int(client.execute_command("WAIT", replicas, 200)) >= replicas
        finally:
            client.close()

    def online_replicas(self) -> int:
        """Replicas this master has and that finished their sync (``state=online``)."""
        client = self.client()
        try:
            info = client.info("replication")
        finally:
            client.close()
        return sum(1 for k, v in info.items() if k.startswith("slave") and dict(v).get("state") == "online")

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""


class Group:
    """Processes started together and stopped together."""

    nodes: list[Node]

    def logs(self) -> str:
        return "\n".join(f"--- {node.name} ({node.address})\n{node.log()}" for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def node_at(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)


class ClusterGroup(Group):
    """3 masters + 3 replicas, ``cluster-node-timeout`` 1000 ms."""

    def __init__(self, executable: str, cli: str, workdir: Path) -> None:
        self.cli = cli
        self.nodes = []
        for n in range(6):
            extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
            ]
            self.nodes.append(Node(executable, workdir, f"cluster{n}", extra, bus=True))

    @property
    def url(self) -> str:
        """A seed node's URL, as ``redis_url`` with ``redis_cluster = true`` takes it."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start(new_ports=True)
        create = subprocess.run(
            [self.cli, "--cluster", "create", *(node.address for node in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        if create.returncode != 0:
            output = create.stdout.decode() + create.stderr.decode()
            pytest.fail(f"redis-cli --cluster create failed:\n{output}")
        self.wait_healthy(30)

    def healthy(self) -> bool:
        """Every live node sees the cluster ok, and each of the 3 masters has a live, synced replica."""
        live = [node for node in self.nodes if node.alive]
        if any("cluster_state:ok" not in node.ask("CLUSTER", "INFO") for node in live):
            return False
        masters = [node for node in live if node.role() == "master"]
        if len(masters) != 3:
            return False
        if not all(master.online_replicas() >= 1 for master in masters):
            return False
        # and every node's slot table (what clients read) lists a replica for each range
        return all(len(entry) >= 4 for node in live for entry in node.ask("CLUSTER", "SLOTS"))

    def wait_healthy(self, within: float) -> float:
        return wait_for("the cluster is healthy, a replica per master", self.healthy, within, self.logs)

    def master_of(self, key: str) -> Node:
        """The node that masters ``key``'s slot now (asked of a live node)."""
        for live in (node for node in self.nodes if node.alive):
            with contextlib.suppress(redis.ConnectionError):
                slot = int(live.ask("CLUSTER", "KEYSLOT", key))
                slots = live.ask("CLUSTER", "SLOTS")
                break
        else:
            raise AssertionError("no live cluster node answers")
        for start, end, master, *_ in slots:
            if int(start) <= slot <= int(end):
                return self.node_at(int(master[1]))
        raise AssertionError(f"no master for slot {slot}")

    def replica_of(self, master: Node) -> Node:
        """The live node that replicates ``master``."""
        for node in self.nodes:
            if node.alive and node is not master:
                role = node.ask("ROLE")
                if role[0] == "slave" and int(role[2]) == master.port:
                    return node
        raise AssertionError(f"{master.name} has no replica")


class Sentinel(Node):
    """``redis-server <conf> --sentinel`` watching ``master`` as ``mymaster`` (its config file is
    written at each start: Sentinel rewrites it, and a port may have been replaced)."""

    def __init__(self, executable: str, workdir: Path, name: str, master: Node) -> None:
        super().__init__(executable, workdir, name, [])
        self.master = master

    def command(self) -> list[str]:
        conf = self.dir / "sentinel.conf"
        if not conf.exists() or f"port {self.port}\n" not in conf.read_text():
            conf.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 4000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 2\n"
            )
        return [self.executable, str(conf), "--sentinel"]


class SentinelGroup(Group):
    """One master, two replicas, three Sentinels watching it as ``mymaster``."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.master = Node(executable, workdir, "master", [])
        self.replicas = [Node(executable, workdir, f"replica{n}", [], follow=self.master) for n in range(2)]
        self.sentinels: list[Node] = [
            Sentinel(executable, workdir, f"sentinel{n}", self.master) for n in range(3)
        ]
        self.nodes = [self.master, *self.replicas, *self.sentinels]

    @property
    def addresses(self) -> list[str]:
        """``redis_sentinels``."""
        return [sentinel.address for sentinel in self.sentinels]

    def start(self) -> None:
        """Data nodes first, synced, then the Sentinels: their first INFO then lists both replicas."""
        for node in (self.master, *self.replicas):
            node.start(new_ports=True)
        wait_for("the replicas are synced", lambda: self.master.online_replicas() == 2, 20, self.logs)
        wait_for("the replicas acknowledge", lambda: self.master.acknowledged(2), 20, self.logs)
        for node in self.sentinels:
            node.start(new_ports=True)
        self.wait_healthy(30)

    def current_master(self) -> Node:
        """The data node the Sentinels name as master now."""
        _, port = self.sentinels[0].ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
        return self.node_at(int(port))

    def healthy(self) -> bool:
        """The Sentinels agree on a live master with at least one synced replica, and know each other."""
        ask = ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
        masters = {tuple(sentinel.ask(*ask)) for sentinel in self.sentinels}
        if len(masters) != 1:
            return False
        master = self.current_master()
        if not master.alive or master.role() != "master":
            return False
        if master.online_replicas() < 1:
            return False
        info = self.sentinels[0].ask("SENTINEL", "MASTER", SENTINEL_MASTER)
        if isinstance(info, list):  # redis-py before 8 leaves it a flat list
            info = dict(zip(info[::2], info[1::2], strict=True))
        return int(info.get("num-other-sentinels", 0)) >= 2 and int(info.get("num-slaves", 0)) >= 1

    def wait_healthy(self, within: float) -> float:
        return wait_for("the Sentinel group is healthy", self.healthy, within, self.logs)


class ReplicatedPair(Group):
    """One master and one replica: the smallest topology where ``WAIT`` can be acknowledged or not.

    :meth:`pause` stops the replica (SIGSTOP): it stays connected but acknowledges
    nothing, so ``WAIT 1`` times out; :meth:`resume` lets it catch up.
    """

    def __init__(self, executable: str, workdir: Path) -> None:
        self.master = Node(executable, workdir, "pair-master", [])
        self.replica = Node(executable, workdir, "pair-replica", [], follow=self.master)
        self.nodes = [self.master, self.replica]

    @property
    def url(self) -> str:
        return f"redis://{self.master.address}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start(new_ports=True)
        wait_for("the replica is synced", lambda: self.master.online_replicas() == 1, 20, self.logs)
        wait_for("the replica acknowledges", lambda: self.master.acknowledged(1), 20, self.logs)

    def pause(self) -> None:
        self.replica.pause()

    def resume(self) -> None:
        self.replica.resume()
