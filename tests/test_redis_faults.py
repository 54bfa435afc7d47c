"""RedisStore under FixGuard when Redis misbehaves, and what a request costs in Redis.

Everything runs against the tests' own redis-server (conftest.py), which these
tests kill, restart and pause. Fail closed: every request that needs the store
(it carries a fixguard cookie, or its response sets an app cookie, or it is a
login) gets a plain-text 503 and a ``store_unavailable`` event while Redis is
down or slow; a request that needs nothing still works; and when Redis is back
the very next request works, with the same FixGuard and the same client.

Round trips are counted by the server itself: MONITOR lists each command a
client sent (commands a Lua script runs inside are marked ``lua`` and are not
round trips), and ``INFO commandstats`` must agree with it.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry
from webtest import TestApp, TestResponse

from fixguard import FixGuard, RedisStore
from fixguard.events import Event
from fixguard.stores.base import StoreError
from fixguard.stores.redis import UNREADABLE

from .apps import fg_cookie

SECRET = "fault-suite-key-0123456789-abcdefghijklmnopqrs"
UNAVAILABLE = "The session service is unavailable. Please try again shortly.\n"


class Guarded:
    """FixGuard + RedisStore around the tiny app, with the events it emitted."""

    def __init__(self, wsgi_app: Any, store: RedisStore, settle_time: float = 0.02) -> None:
        self.store = store
        self.events: list[Event] = []
        self.app = FixGuard(
            wsgi_app,
            SECRET,
            store=store,
            app_cookies=("session",),
            secure=False,
            settle_time=settle_time,
            on_event=self.events.append,
        )

    def request(self, method: str, path: str, cookie: str | None = None, status: int = 200) -> TestResponse:
        """One request from a client holding ``cookie`` (or none); checks the status."""
        headers = {"Cookie": f"fixguard={cookie}"} if cookie else {}
        return TestApp(self.app).request(path, method=method, headers=headers, status=status)

    def session(self, value: str = "alice") -> str:
        """A fresh session whose jar holds ``session=value``; its signed cookie."""
        res = self.request("GET", f"/set?v={value}")
        cookie = fg_cookie(res)
        assert cookie
        return cookie

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def assert_unavailable(res: TestResponse) -> None:
    """The fail-closed answer: 503, plain text that says what happened, nothing else leaks."""
    assert res.status_int == 503
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.headers["Retry-After"] == "5"
    assert res.headers["Cache-Control"] == "no-store"
    assert res.text == UNAVAILABLE
    assert "Set-Cookie" not in res.headers  # no app cookie escapes, no fixguard cookie is issued


@pytest.fixture
def redis_store(redis_server: Any, redis_prefix: str) -> Iterator[RedisStore]:
    redis_server.start()
    store = RedisStore.from_url(
        redis_server.url, prefix=redis_prefix, socket_timeout=0.3, socket_connect_timeout=0.3
    )
    yield store
    store.close()


@pytest.fixture
def guarded(wsgi_app: Any, redis_store: RedisStore) -> Guarded:
    return Guarded(wsgi_app, redis_store)


# -- Redis down ------------------------------------------------------------------------


def test_redis_down_fails_closed_then_recovers_without_a_restart(guarded: Guarded, redis_server: Any) -> None:
    cookie = guarded.session("alice")
    assert guarded.request("GET", "/whoami", cookie).text == "alice"
    guarded.events.clear()

    redis_server.stop()
    try:
        needs_store = [
            ("GET", "/whoami", cookie),  # carries a fixguard cookie: a lookup
            ("GET", "/plain", cookie),
            ("POST", "/logout", cookie),
            ("POST", "/login", cookie),  # the freeze before the app runs
            ("GET", "/set", None),  # no cookie, but the app starts a session
            ("POST", "/login", None),  # a login rule answered with success
        ]
        for method, path, sent in needs_store:
            started = time.monotonic()
            assert_unavailable(guarded.request(method, path, sent, status=503))
            assert time.monotonic() - started < 1.0, (method, path)
        unavailable = [e for e in guarded.events if e.kind == "store_unavailable"]
        assert len(unavailable) == len(needs_store)
        assert all(e.detail["reason"].startswith("Redis ") for e in unavailable)
        assert [(e.method, e.path) for e in unavailable] == [(m, p) for m, p, _ in needs_store]

        # a request that needs nothing from the store is served as usual
        assert guarded.request("GET", "/plain").text == "ok"
        assert guarded.request("GET", "/whoami").text == "anonymous"
    finally:
        redis_server.start()

    # the same FixGuard, the same client: the next request works. The server kept
    # nothing (persistence is off), so the old ID is unknown: no session, cookie cleared.
    res = guarded.request("GET", "/whoami", cookie)
    assert res.text == "anonymous"
    assert fg_cookie(res) == ""
    fresh = guarded.session("bob")
    assert guarded.request("GET", "/whoami", fresh).text == "bob"
    login = guarded.request("POST", "/login", fresh)  # scripts are reloaded after NOSCRIPT
    rotated = fg_cookie(login)
    assert rotated and rotated != fresh
    assert guarded.request("GET", "/whoami", rotated).text == "user"
    assert guarded.request("GET", "/whoami", fresh, status=401).status_int == 401


def test_a_restart_between_requests_costs_no_error(guarded: Guarded, redis_server: Any) -> None:
    """The pool notices its connection to the dead server and reconnects: no 503."""
    cookie = guarded.session("alice")
    redis_server.stop()
    redis_server.start()
    res = guarded.request("GET", "/whoami", cookie)  # 200: the record is gone, not the service
    assert res.text == "anonymous" and fg_cookie(res) == ""
    assert "store_unavailable" not in guarded.kinds()
    fresh = guarded.session("bob")
    assert guarded.request("GET", "/whoami", fresh).text == "bob"


@pytest.mark.parametrize("retries", [1, 0], ids=["default-retry", "no-retry"])
def test_a_connection_dropped_mid_command_is_retried_once(
    wsgi_app: Any, redis_server: Any, redis_prefix: str, retries: int
) -> None:
    """The server drops the store's connection while a write waits: one retry saves the request.

    ``CLIENT PAUSE WRITE`` holds the request's handover pipeline; ``CLIENT KILL``
    then closes its connection under it. With from_url's Retry the pipeline is
    sent again on a new connection, its replayed ``SET NX`` is recognised as
    ours, and the request succeeds; without it, 503.
    """
    options: dict[str, Any] = {"socket_timeout": 0.5}
    if retries == 0:
        options["retry"] = Retry(NoBackoff(), 0)
    store = RedisStore.from_url(redis_server.url, prefix=redis_prefix, **options)
    guarded = Guarded(wsgi_app, store)
    cookie = guarded.session("alice")
    admin = redis_server.client()

    def drop_when_blocked() -> None:
        deadline = time.monotonic() + 1
        while admin.info("clients")["blocked_clients"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        admin.client_kill_filter(_type="normal", skipme=True)

    try:
        admin.client_pause(250, all=False)
        killer = threading.Thread(target=drop_when_blocked)
        killer.start()
        res = guarded.request("GET", "/set?v=bob", cookie, status="*")
        killer.join(2)
    finally:
        admin.client_unpause()
        admin.close()
    if retries:
        assert res.status_int == 200 and "store_unavailable" not in guarded.kinds()
        moved = fg_cookie(res)  # the write moved the session to a new ID
        assert moved and moved != cookie
        assert guarded.request("GET", "/whoami", moved).text == "bob"
        assert guarded.request("GET", "/whoami", cookie).text == "alice"  # the old ID: its snapshot
    else:
        assert_unavailable(res)
    store.close()


def test_a_freeze_whose_reply_was_lost_is_retried_and_recognised(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server runs the freeze, the connection dies before the reply: the retry sees ``1R<own token>``.

    The record is frozen by this very request, so the login should proceed as
    its own freeze; today FixGuard reports ``frozen_request`` and runs the login
    anonymous (a failed login would then leave the session frozen until its TTL).
    """
    import redis.connection

    warm = guarded.session("warm")
    guarded.request("POST", "/login", warm)  # scripts loaded: the next reply is the freeze's
    cookie = guarded.session("alice")
    read = redis.connection.AbstractConnection.read_response
    armed = [True]

    def lose_one_reply(self: Any, *args: Any, **kwargs: Any) -> Any:
        reply = read(self, *args, **kwargs)
        if armed and armed.pop():
            raise redis.exceptions.ConnectionError("connection reset after the server answered")
        return reply

    monkeypatch.setattr(redis.connection.AbstractConnection, "read_response", lose_one_reply)
    guarded.events.clear()
    assert guarded.request("POST", "/login", cookie).text == "welcome"
    assert not armed  # the freeze's reply was the one lost, and redis-py retried it
    assert "frozen_request" not in guarded.kinds()


def test_store_errors_name_the_problem_not_the_key(redis_store: RedisStore, redis_server: Any) -> None:
    key = "k-" + secrets.token_hex(8)
    redis_server.stop()
    try:
        calls: list[Callable[[], object]] = [
            lambda: redis_store.get(key),
            lambda: redis_store.create(key, "1L|{}", 1),
            lambda: redis_store.replace(key, "1L", "1L|{}", None),
            lambda: redis_store.freeze(key, "tok"),
            lambda: redis_store.retire(key, "1T|{}", 1),
            lambda: redis_store.delete(key),
            lambda: redis_store.link("alice", key, 1),
            lambda: redis_store.sessions("alice"),
            lambda: redis_store.ping(),
        ]
        for call in calls:
            with pytest.raises(StoreError) as caught:
                call()
            message = str(caught.value)
            assert message.startswith("Redis ") and "ConnectionError" in message, message
            assert key not in message and "1L|" not in message and "alice" not in message
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
    finally:
        redis_server.start()
    assert redis_store.ping() is True


# -- Redis slow ------------------------------------------------------------------------


def test_a_paused_redis_times_out_into_503_and_replies_never_cross(
    guarded: Guarded, redis_server: Any
) -> None:
    alice = guarded.session("alice")
    bob = guarded.session("bob")
    admin = redis_server.client()
    try:
        admin.client_pause(600, all=True)  # ALL: even CLIENT UNPAUSE waits it out
        started = time.monotonic()
        assert_unavailable(guarded.request("GET", "/whoami", alice, status=503))
        elapsed = time.monotonic() - started
        assert 0.25 < elapsed < 1.0  # socket_timeout=0.3, and a timeout is not retried
        assert guarded.kinds()[-1] == "store_unavailable"
    finally:
        admin.client_unpause()
        admin.close()
    # the connection that timed out was dropped: its late reply (alice's record) can
    # never be read as the answer to someone else's command
    assert guarded.request("GET", "/whoami", bob).text == "bob"
    assert guarded.request("GET", "/whoami", alice).text == "alice"


def test_a_write_that_times_out_replaces_the_apps_answer_with_503(
    guarded: Guarded, redis_server: Any
) -> None:
    cookie = guarded.session("alice")
    admin = redis_server.client()
    try:
        admin.client_pause(3000, all=False)  # WRITE mode: GET still answers, scripts wait
        res = guarded.request("GET", "/set?v=mallory", cookie, status=503)
        assert_unavailable(res)  # the app's 200 and its Set-Cookie never leave
        assert guarded.kinds()[-1] == "store_unavailable"
    finally:
        admin.client_unpause()
        admin.close()
    # the timed-out client hung up, so the paused write was dropped, never applied late
    assert guarded.request("GET", "/whoami", cookie).text == "alice"


def test_a_server_answering_garbage_is_503(wsgi_app: Any) -> None:
    """Something that is not Redis listens on the port: InvalidResponse, fail closed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
    try:
        guarded = Guarded(wsgi_app, store)
        _, signed = guarded.app.ids.mint()  # a well-signed ID to present
        assert_unavailable(guarded.request("GET", "/whoami", signed, status=503))
        assert_unavailable(guarded.request("GET", "/set", None, status=503))
        assert guarded.kinds() == ["store_unavailable", "store_unavailable"]
        assert guarded.request("GET", "/plain").text == "ok"
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        store.close()


# -- round trips -----------------------------------------------------------------------


class RoundTrips:
    """What the server saw while ``do`` ran: top-level commands, and commandstats."""

    ADMIN = frozenset({"config|resetstat", "monitor", "echo", "info"})

    def __init__(self, server: Any) -> None:
        self.admin = server.client(protocol=2)

    def measure(self, do: Callable[[], object]) -> tuple[list[str], Counter[str]]:
        marker = "fixguard-test-" + secrets.token_hex(4)
        self.admin.config_resetstat()
        with self.admin.monitor() as monitor:
            self.trips = 0
            original = AbstractConnection.send_packed_command

            def counted(conn: Any, command: Any, check_health: bool = True) -> None:
                self.trips += 1  # one send, then its replies: one round trip (a pipeline included)
                original(conn, command, check_health)

            AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
            try:
                do()
            finally:
                AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
            self.admin.echo(marker)
            sent: list[str] = []
            inside: Counter[str] = Counter()
            while True:
                line = monitor.next_command()
                words = line["command"].split(" ")
                name = words[0].upper()
                if name == "ECHO" and marker in words:
                    break
                if line["client_type"] == "lua":
                    inside[name.lower()] += 1
                else:
                    sent.append(name)
        stats = Counter(
            {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in self.admin.info("commandstats").items()
                if name.removeprefix("cmdstat_") not in self.ADMIN
            }
        )
        # commandstats counts the commands scripts run too: the two views must agree
        assert stats == Counter(name.lower() for name in sent) + inside, (sent, inside, stats)
        return sent, stats

    def close(self) -> None:
        self.admin.close()


def test_round_trips_per_request(wsgi_app: Any, redis_store: RedisStore, redis_server: Any) -> None:
    # a long settle time: no request here may look slow enough to be re-checked
    guarded = Guarded(wsgi_app, redis_store, settle_time=0.2)
    warm = guarded.session("warm")  # connection made, scripts loaded
    guarded.request("GET", "/set?v=warm2", warm)
    guarded.request("POST", "/login", warm)
    tally = RoundTrips(redis_server)
    try:
        cookie = guarded.session("alice")
        responses: list[TestResponse] = []

        def run(method: str, path: str, sent: str | None = None, status: int = 200) -> Callable[[], None]:
            return lambda: responses.append(guarded.request(method, path, sent, status))

        sent, stats = tally.measure(run("GET", "/plain"))
        assert sent == [] and stats == Counter()  # no cookie, nothing set: 0

        sent, _ = tally.measure(run("GET", "/whoami", cookie))
        assert sent == ["GET"] and tally.trips == 1  # read-only session: 1
        assert responses[-1].text == "alice"

        sent, stats = tally.measure(run("GET", "/set?v=bob", cookie))
        # session write: a new ID (SET NX), the old one a snapshot (compare-and-set): 2 round trips
        assert sent == ["GET", "SET", "EVAL"] and tally.trips == 2
        assert stats == Counter({"get": 2, "eval": 1, "set": 2})  # the script's GET + SET inside
        cookie = fg_cookie(responses[-1])
        assert cookie

        sent, stats = tally.measure(run("POST", "/login", cookie))
        # login: freeze; then one pipeline: SET NX new, SET tombstone: 2 round trips
        assert sent == ["EVALSHA", "SET", "SET"] and tally.trips == 2
        assert stats == Counter({"evalsha": 1, "get": 1, "set": 3})
        rotated = fg_cookie(responses[-1])
        assert rotated

        sent, _ = tally.measure(run("GET", "/whoami", cookie, status=401))
        assert sent == ["GET"]  # the retired ID: 1, then 401

        sent, _ = tally.measure(run("GET", "/set", None))
        assert sent == ["SET"]  # a new session: 1 (SET NX)

        sent, _ = tally.measure(run("POST", "/login", None))
        assert sent == ["SET"]  # a login with no session before: 1

        sent, _ = tally.measure(run("POST", "/logout", rotated))
        assert sent == ["GET", "SET"]  # logout: lookup + tombstone: 2
    finally:
        tally.close()


# -- connection settings and packaging -------------------------------------------------


def test_from_url_defaults_and_overrides() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/3", prefix="app:")
    kwargs = store.client.connection_pool.connection_kwargs
    assert store.prefix == "app:"
    assert kwargs["db"] == 3
    assert kwargs["socket_timeout"] == 1.0 and kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == 30
    assert kwargs["retry"].get_retries() == 1
    custom = RedisStore.from_url("redis://127.0.0.1:1/0", socket_timeout=0.1)
    assert custom.client.connection_pool.connection_kwargs["socket_timeout"] == 0.1
    tls = RedisStore.from_url("rediss://127.0.0.1:1/0")
    assert tls.client.connection_pool.connection_class.__name__ == "SSLConnection"


def test_from_url_over_a_unix_socket(redis_server: Any, redis_prefix: str) -> None:
    store = RedisStore.from_url(redis_server.unix_url, prefix=redis_prefix)
    try:
        assert store.ping() is True
        assert store.create("k", "1L|{}", 5)
        assert store.freeze("k", "tok") == "1L|{}"
        assert store.get("k") == "1Rtok|{}"
    finally:
        store.close()


def test_a_client_that_decodes_responses_works_too(redis_server: Any, redis_prefix: str) -> None:
    """A caller's own client may have decode_responses=True: same answers, bytes garbage included."""
    client = redis_server.client(decode_responses=True)
    store = RedisStore(client, prefix=redis_prefix)
    try:
        value = '1L|{"c":1,"t":1,"j":{"session":"caf\u00e9"}}'
        assert store.create("k", value, 5)
        assert store.get("k") == value
        assert store.freeze("k", "tok") == value
        assert store.replace("k", "1Rtok", "1Ltok|{}", None) is True
        client.set(redis_prefix + "bad", b"1L|\xff")
        assert store.get("bad") == store.freeze("bad", "tok") == UNREADABLE
        assert store.get("k") == "1Ltok|{}"  # the connection is still in step
    finally:
        client.close()


def test_keys_carry_the_prefix_and_nothing_else(redis_store: RedisStore, redis_server: Any) -> None:
    redis_store.create("abc", "1L|{}", 5)
    redis_store.link("alice", "abc", 5)
    admin = redis_server.client()
    try:
        keys = sorted(k.decode() for k in admin.scan_iter(match=redis_store.prefix + "*"))
    finally:
        admin.close()
    assert keys[0] == redis_store.prefix + "abc"
    assert keys[1].startswith(redis_store.prefix + "subject:") and "alice" not in keys[1]
    assert len(keys) == 2


def test_import_fixguard_needs_no_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import fixguard\n"
        "try:\n"
        "    fixguard.RedisStore\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'fixguard[redis]'" in out.stdout
