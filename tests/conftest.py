"""Shared fixtures: the tests' own redis-server, and a store of each kind.

The Redis tests run against a real ``redis-server`` that this file starts on a
free loopback port with persistence off, in a temporary directory, and kills at
the end of the session. It never talks to any other Redis (in particular not to
one on the default port 6379). Fault tests may ``stop()`` it (kill -9) and
``start()`` it again on the same port.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixguard.stores.base import Store
from fixguard.stores.memory import MemoryStore

_PREFIXES = itertools.count(1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process owned by the test session."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = _free_port()
        self.unix_socket = workdir / "redis.sock"
        self.log = workdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.unix_socket}?db=0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kwargs: Any) -> Any:
        """A plain redis-py client on this server (the caller closes it)."""
        import redis

        kwargs.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> None:
        """Start (or restart) on the same port; a no-op if running. Waits for PING."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--unixsocket", str(self.unix_socket),
                    "--unixsocketperm", "700",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._wait_for_ping()

    def stop(self) -> None:
        """kill -9, and wait until the port is closed."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(timeout=5)
        self.proc = None

    def _wait_for_ping(self) -> None:
        import redis

        deadline = time.monotonic() + 10
        client = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if not self.running or time.monotonic() > deadline:
                    self.stop()
                    tail = self.log.read_text(errors="replace")[-2000:]
                    pytest.fail(f"redis-server on port {self.port} did not start:\n{tail}")
                time.sleep(0.02)
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's own redis-server (needs the ``redis-server`` binary)."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(
            "redis-server is not on PATH: the Redis tests need a real server. "
            "Install it (Debian/Ubuntu: apt-get install redis-server) or run ./scripts/test.sh, "
            "which does."
        )
    server = RedisServer(executable, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, so tests never see each other's keys."""
    return f"fgtest{next(_PREFIXES)}:"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh store of each kind: MemoryStore, and RedisStore on the tests' own server."""
    if request.param == "memory":
        yield MemoryStore()
        return
    from fixguard.stores.redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    server.start()  # a fault test that failed half-way may have left it stopped
    prefix: str = request.getfixturevalue("redis_prefix")
    redis_store = RedisStore.from_url(server.url, prefix=prefix)
    try:
        yield redis_store
    finally:
        with contextlib.suppress(Exception):
            redis_store.close()


def tiny_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A raw WSGI app with one session cookie, ``session``, and one path per behaviour.

    ``GET /set?v=X`` sets ``session=X``; ``GET /whoami`` answers the ``session``
    cookie it received (or ``anonymous``); ``POST /login`` sets ``session=user``;
    ``POST /logout`` deletes it; ``GET /plain`` sets nothing.
    """
    from urllib.parse import parse_qs

    from werkzeug.http import parse_cookie

    path = environ.get("PATH_INFO", "/")
    headers = [("Content-Type", "text/plain")]
    if path == "/set":
        value = parse_qs(environ.get("QUERY_STRING", "")).get("v", ["v1"])[0]
        headers.append(("Set-Cookie", f"session={value}; Path=/"))
        body = f"set {value}"
    elif path == "/login":
        headers.append(("Set-Cookie", "session=user; Path=/"))
        body = "welcome"
    elif path == "/logout":
        headers.append(("Set-Cookie", "session=; Path=/; Max-Age=0"))
        body = "bye"
    elif path == "/whoami":
        body = parse_cookie(environ.get("HTTP_COOKIE", "")).get("session", "anonymous")
    else:
        body = "ok"
    start_response("200 OK", headers)
    return [body.encode()]


@pytest.fixture
def wsgi_app() -> Any:
    """The tiny WSGI app above, for tests that wrap it in FixGuard."""
    return tiny_app


@pytest.fixture(params=["memory", "redis"])
def async_store_spec(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """What an ASGI test makes its store from, inside its own event loop (see tests.asgi_support):
    a MemoryStore, or an AsyncRedisStore on the tests' own server under a fresh prefix."""
    if request.param == "memory":
        return ("memory", "", "")
    server: RedisServer = request.getfixturevalue("redis_server")
    server.start()
    return ("redis", server.url, request.getfixturevalue("redis_prefix"))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Redis Cluster of 3 masters and 3 replicas on loopback (see tests/topologies.py)."""
    from .topologies import ClusterGroup

    executable, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if executable is None or cli is None:
        pytest.fail("the Cluster tests need redis-server and redis-cli: apt-get install redis-server")
    group = ClusterGroup(executable, cli, tmp_path_factory.mktemp("cluster"))
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One master, two replicas and three Sentinels on loopback (see tests/topologies.py)."""
    from .topologies import SentinelGroup

    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("the Sentinel tests need redis-server: apt-get install redis-server")
    group = SentinelGroup(executable, tmp_path_factory.mktemp("sentinel"))
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A master and one replica on loopback, for WAIT (see tests/topologies.py)."""
    from .topologies import ReplicatedPair

    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("the replication tests need redis-server: apt-get install redis-server")
    group = ReplicatedPair(executable, tmp_path_factory.mktemp("pair"))
    try:
        group.start()
        yield group
    finally:
        group.resume() if group.replica.alive else None
        group.stop()
