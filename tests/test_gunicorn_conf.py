"""``fixguard.gunicorn`` and ``examples/gunicorn.conf.py``: an unmodified app protected by configuration.

The first half calls the hooks with stand-ins for gunicorn's objects. The
second starts real gunicorn with the example config file in front of
:mod:`examples.basic_auth_app` — the vulnerable app exactly as it is — and
plays the attack over loopback with ``requests``: once with one worker and a
MemoryStore configured from a TOML file, once with two workers sharing the
tests' own redis-server, and checks that gunicorn refuses to start at all when
the configuration cannot protect the app.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from webtest import TestApp

from fixguard import FixGuard, MemoryStore
from fixguard.gunicorn import (
    StartupRefused,
    nworkers_changed,
    on_starting,
    post_worker_init,
    shared_store_problem,
)

from .apps import SECRET, VulnerableApp, echo_app, fg_cookie
from .servers import HOST, REPO, Gunicorn, Gunicorns

TIMEOUT = 5  # seconds, for every HTTP request
START_TIMEOUT = 15  # seconds for gunicorn to listen with its workers booted (or to give up)
FIXGUARD_401 = "This session has ended. Please sign in again."
ALICE = ("alice", "secret")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """os.environ without any FIXGUARD_* variable, plus a valid key and plain-http cookies."""
    for name in list(os.environ):
        if name.upper().startswith("FIXGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FIXGUARD_SECRET_KEY", SECRET)
    monkeypatch.setenv("FIXGUARD_SECURE", "false")
    return monkeypatch


# -- the hooks, with stand-ins for gunicorn's objects ------------------------------------------


@dataclass
class FakeLog:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def _add(self, level: str, message: str, *args: Any) -> None:
        self.lines.append((level, message % args if args else message))

    def error(self, message: str, *args: Any) -> None:
        self._add("error", message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self._add("warning", message, *args)

    def info(self, message: str, *args: Any) -> None:
        self._add("info", message, *args)

    def text(self, level: str) -> str:
        return "\n".join(line for lvl, line in self.lines if lvl == level)


@dataclass
class FakeCfg:
    workers: int = 1
    max_requests: int = 0


@dataclass
class FakeServer:
    num_workers: int = 1
    cfg: FakeCfg = field(default_factory=FakeCfg)
    log: FakeLog = field(default_factory=FakeLog)


@dataclass
class FakeWorker:
    wsgi: Any
    cfg: FakeCfg = field(default_factory=FakeCfg)
    log: FakeLog = field(default_factory=FakeLog)


def test_post_worker_init_wraps_the_loaded_app(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIXGUARD_LOGIN", "POST /login")
    app = VulnerableApp()
    worker = FakeWorker(app)
    post_worker_init(worker)
    assert isinstance(worker.wsgi, FixGuard) and worker.wsgi.app is app
    assert isinstance(worker.wsgi.store, MemoryStore)
    assert "fixguard: protecting the app" in worker.log.text("info")
    # and it protects: the app's cookie stays inside, a login rotates
    client = TestApp(worker.wsgi)
    first = client.get("/")
    assert not any(h.startswith("session=") for h in first.headers.getall("Set-Cookie"))
    planted = fg_cookie(first)
    assert planted is not None
    login = client.post("/login", {"password": "secret"})
    assert fg_cookie(login) not in (None, planted)


def test_post_worker_init_refuses_what_cannot_be_protected(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(StartupRefused, match="serves no WSGI app"):
        post_worker_init(FakeWorker(None))
    with pytest.raises(StartupRefused, match="already wrapped in FixGuard"):
        post_worker_init(FakeWorker(FixGuard(echo_app, SECRET)))
    with pytest.raises(StartupRefused, match="refusing to run 3 workers without Redis"):
        post_worker_init(FakeWorker(echo_app, FakeCfg(workers=3)))
    clean_env.setenv("FIXGUARD_SECRET_KEY", "short")
    with pytest.raises(Exception, match="FIXGUARD_SECRET_KEY is 5 bytes"):
        post_worker_init(FakeWorker(echo_app))


def test_on_starting_accepts_one_worker(clean_env: pytest.MonkeyPatch) -> None:
    server = FakeServer()
    on_starting(server)
    assert "fixguard: configuration checked; store: MemoryStore" in server.log.text("info")
    assert not server.log.text("error") and not server.log.text("warning")


def test_on_starting_refuses_several_workers_without_redis(clean_env: pytest.MonkeyPatch) -> None:
    server = FakeServer(num_workers=2)
    with pytest.raises(StartupRefused) as caught:
        on_starting(server)
    message = str(caught.value)
    assert "refusing to run 2 workers without Redis" in message  # what
    assert "a session created by one worker would be unknown to the others" in message  # why
    assert "Set FIXGUARD_REDIS_URL" in message and "-w 1" in message  # what to do
    assert server.log.text("error") == message  # also in gunicorn's error log


def test_on_starting_refuses_a_bad_configuration(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIXGUARD_SECUR", "true")
    server = FakeServer()
    with pytest.raises(StartupRefused, match=r"^fixguard: FIXGUARD_SECUR .*Did you mean FIXGUARD_SECURE\?"):
        on_starting(server)
    clean_env.delenv("FIXGUARD_SECUR")
    clean_env.setenv("FIXGUARD_ABSOLUTE_TIMEOUT", "10")  # shorter than idle: only FixGuard itself sees it
    with pytest.raises(StartupRefused, match=r"absolute_timeout .* is shorter than idle_timeout"):
        on_starting(FakeServer())


def test_on_starting_with_redis(clean_env: pytest.MonkeyPatch, redis_server: Any) -> None:
    redis_server.start()
    clean_env.setenv("FIXGUARD_REDIS_URL", redis_server.url)
    server = FakeServer(num_workers=4)
    on_starting(server)
    assert "store: RedisStore, key prefix 'fixguard:'" in server.log.text("info")
    assert redis_server.url not in str(server.log.lines)
    assert not server.log.text("warning")


def test_on_starting_warns_when_redis_does_not_answer_yet(clean_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    clean_env.setenv("FIXGUARD_REDIS_URL", f"redis://{HOST}:{port}/0")
    server = FakeServer(num_workers=2)
    on_starting(server)  # Redis may come up after gunicorn: a warning, not a refusal
    assert "Redis does not answer yet" in server.log.text("warning")


def test_on_starting_warns_that_max_requests_forgets_memory_sessions(clean_env: pytest.MonkeyPatch) -> None:
    server = FakeServer(cfg=FakeCfg(max_requests=1000))
    on_starting(server)
    assert "MemoryStore forgets every session" in server.log.text("warning")


def test_nworkers_changed_keeps_one_worker_without_redis(clean_env: pytest.MonkeyPatch) -> None:
    server = FakeServer(num_workers=2)
    nworkers_changed(server, 1, None)  # gunicorn's first call: on_starting checks that one
    nworkers_changed(server, 2, 1)
    assert server.num_workers == 1
    assert "Keeping 1 worker(s)" in server.log.text("error")
    server = FakeServer(num_workers=1)
    nworkers_changed(server, 1, 2)  # fewer is always fine
    assert server.num_workers == 1 and not server.log.lines
    clean_env.setenv("FIXGUARD_REDIS_URL", "redis://127.0.0.1:1/0")
    server = FakeServer(num_workers=3)
    nworkers_changed(server, 3, 1)
    assert server.num_workers == 3 and not server.log.lines


def test_shared_store_problem() -> None:
    assert shared_store_problem(1, {}) is None
    assert shared_store_problem(2, {"redis_url": "redis://x"}) is None
    assert "refusing to run 2 workers" in (shared_store_problem(2, {}) or "")


def test_fixguard_gunicorn_does_not_import_gunicorn() -> None:
    code = "import sys; sys.modules['gunicorn'] = None; import fixguard.gunicorn; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_example_config_file_exports_the_hooks() -> None:
    namespace: dict[str, Any] = {}
    path = REPO / "examples" / "gunicorn.conf.py"
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # what gunicorn does with -c  # noqa: S102
    assert namespace["post_worker_init"] is post_worker_init
    assert namespace["on_starting"] is on_starting
    assert namespace["nworkers_changed"] is nworkers_changed


# -- real gunicorn --------------------------------------------------------------------------------


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment without FIXGUARD_* variables, plus ``settings``."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("FIXGUARD_")}
    return {**base, **settings}


def served_by(server: Gunicorn, probe: str) -> tuple[int, int]:
    """(worker PID, status) of the request that carried ``X-Probe: probe``, from the access log."""
    assert server.access_log is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if server.access_log.exists():
            found = re.search(rf"^<(\d+)> {probe} (\d+)$", server.access_log.read_text(), re.M)
            if found:
                return int(found.group(1)), int(found.group(2))
        time.sleep(0.02)
    pytest.fail(f"no access log line for {probe}:\n{server.access_log.read_text(errors='replace')}")


def hold(server: Gunicorn) -> socket.socket:
    """Keep one sync worker busy: a request whose headers never end (see :func:`release`)."""
    sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
    sock.sendall(f"GET /profile HTTP/1.1\r\nHost: {HOST}\r\n".encode())
    return sock


def release(sock: socket.socket) -> None:
    """End the held request and read its answer, so its worker is free again."""
    with sock:
        sock.sendall(b"Connection: close\r\n\r\n")
        while sock.recv(4096):
            pass


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """``start(app, env, workers=1, conf=True, ready=True)``: real gunicorn, stopped at teardown.

    With ``examples/gunicorn.conf.py`` (``conf``), ready means every worker has
    wrapped its app in fixguard; bare, that gunicorn listens.
    """
    with Gunicorns(tmp_path) as started:

        def start(
            app: str, env: dict[str, str], workers: int = 1, conf: bool = True, ready: bool = True
        ) -> Gunicorn:
            server = started.start(
                str(len(started)),
                app,
                env,
                workers=workers,
                worker_timeout=20,
                config=REPO / "examples" / "gunicorn.conf.py" if conf else None,
                access_format="%(p)s %({x-probe}i)s %(s)s",
            )
            if ready:
                server.wait_ready(
                    within=START_TIMEOUT,
                    ready_line="fixguard: protecting the app in worker",
                    count=workers if conf else 0,  # bare: no fixguard line to wait for
                    fail_on=(),
                )
            return server

        yield start


def _get(server: Gunicorn, client: requests.Session, path: str, **kwargs: Any) -> requests.Response:
    return client.get(server.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def _post(server: Gunicorn, client: requests.Session, path: str, **kwargs: Any) -> requests.Response:
    return client.post(server.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def _plant_and_login(server: Gunicorn, cookie: str) -> tuple[requests.Session, requests.Session, str]:
    """Steps 1-3 of the attack: the attacker gets an ID, plants it, the victim logs in."""
    attacker, victim = requests.Session(), requests.Session()
    first = _get(server, attacker, "/")
    assert first.status_code == 200 and first.text == "Hello anonymous visitor, visit #1\n", first.text
    planted = attacker.cookies.get(cookie)
    assert planted, attacker.cookies.get_dict()
    victim.cookies.set(cookie, planted, domain=HOST, path="/")
    login = _post(server, victim, "/login", auth=ALICE)
    assert login.status_code == 200 and login.text == "Logged in as alice\n", login.text
    return attacker, victim, planted


@pytest.mark.slow
def test_one_worker_memory_store_from_a_toml_file(gunicorn: Callable[..., Gunicorn], tmp_path: Path) -> None:
    app = "examples.basic_auth_app:app"  # the vulnerable example, unmodified

    # The bare app falls to the attack, or the protected run below would prove nothing.
    bare = gunicorn(app, _environment(), conf=False)
    attacker, _, _ = _plant_and_login(bare, "session")
    stolen = _get(bare, attacker, "/profile")
    assert stolen.status_code == 200 and stolen.text == "Profile of alice\n"
    bare.stop()

    # The same app behind examples/gunicorn.conf.py: settings in a TOML file, the key in the environment.
    config = tmp_path / "fixguard.toml"
    config.write_text(
        '[fixguard]\napp_cookies = ["session"]\nlogin = ["POST /login"]\nlogout = ["POST /logout"]\n'
        "secure = false\n"
    )
    env = _environment(FIXGUARD_CONFIG=str(config), FIXGUARD_SECRET_KEY=secrets.token_urlsafe(48))
    server = gunicorn(app, env)
    assert "fixguard: configuration checked; store: MemoryStore" in server.log_text()

    attacker, victim, planted = _plant_and_login(server, "fixguard")
    assert "session" not in attacker.cookies and "session" not in victim.cookies  # kept server-side
    post_login = victim.cookies.get("fixguard")
    assert post_login and post_login != planted

    refused = _get(server, attacker, "/profile")  # the replay
    assert refused.status_code == 401 and refused.text.strip() == FIXGUARD_401, refused.text
    profile = _get(server, victim, "/profile")
    assert profile.status_code == 200 and profile.text == "Profile of alice\n"

    bye = _post(server, victim, "/logout")
    assert bye.status_code == 200 and "fixguard" not in victim.cookies
    dead = requests.get(server.base + "/profile", cookies={"fixguard": post_login}, timeout=TIMEOUT)
    assert dead.status_code == 401 and dead.text.strip() == FIXGUARD_401

    # Adding a worker at run time (kill -TTIN) is refused too: sessions would not be shared.
    os.kill(server.proc.pid, signal.SIGTTIN)
    deadline = time.monotonic() + TIMEOUT
    while "Keeping 1 worker(s)" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.05)
    time.sleep(0.5)  # time for a worker that should not exist to boot
    assert len(server.booted_pids()) == 1, server.log_text()


@pytest.mark.slow
def test_two_workers_share_redis(gunicorn: Callable[..., Gunicorn], redis_server: Any) -> None:
    redis_server.start()
    prefix = f"gunicorn-conf-{secrets.token_hex(4)}:"
    env = _environment(
        FIXGUARD_SECRET_KEY=secrets.token_urlsafe(48),
        FIXGUARD_SECURE="false",
        FIXGUARD_APP_COOKIES="session",
        FIXGUARD_REDIS_URL=redis_server.url,
        FIXGUARD_REDIS_PREFIX=prefix,
    )
    server = gunicorn("examples.basic_auth_app:app", env, workers=2)
    workers = server.booted_pids()
    assert len(workers) == 2
    attacker, _, planted = _plant_and_login(server, "fixguard")

    # The replay, once on each worker. A sync worker serves one request at a time, so a
    # request held open keeps one busy and the next request goes to the other.
    def replay(probe: str) -> int:
        response = requests.get(
            server.base + "/profile",
            cookies={"fixguard": planted},
            headers={"X-Probe": probe},
            timeout=TIMEOUT,
        )
        assert response.status_code == 401 and response.text.strip() == FIXGUARD_401, response.text
        pid, status = served_by(server, probe)
        assert status == 401
        return pid

    first_hold = hold(server)  # worker X
    first = replay("replay-1")  # worker Y
    second_hold = hold(server)  # Y again, the only free one
    time.sleep(0.3)  # let Y take it before X is freed
    release(first_hold)
    second = replay("replay-2")  # X
    release(second_hold)
    assert {first, second} == workers, (first, second, workers)

    # Everything fixguard knows is in the tests' Redis, under the configured prefix.
    client = redis_server.client()
    try:
        keys = [key.decode() for key in client.scan_iter(match=prefix + "*")]
    finally:
        client.close()
    assert len(keys) >= 2, keys  # the tombstone of the planted ID and the victim's session
    assert attacker.cookies.get("fixguard") == planted  # the 401 cleared it only for a browser that obeys


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "workers", "expect"),
    [
        ({}, 2, ["refusing to run 2 workers without Redis", "Set FIXGUARD_REDIS_URL"]),
        ({"FIXGUARD_SECUR": "false"}, 1, ["FIXGUARD_SECUR (environment variable) is not a fixguard setting",
                                          "Did you mean FIXGUARD_SECURE?"]),
        ({"FIXGUARD_SECRET_KEY": "changeme"}, 1, ["FIXGUARD_SECRET_KEY is 8 bytes"]),
    ],
)  # fmt: skip
def test_gunicorn_refuses_to_start(
    gunicorn: Callable[..., Gunicorn], settings: dict[str, str], workers: int, expect: list[str]
) -> None:
    env = _environment(FIXGUARD_SECRET_KEY=secrets.token_urlsafe(48), FIXGUARD_SECURE="false")
    server = gunicorn("examples.basic_auth_app:app", {**env, **settings}, workers=workers, ready=False)
    assert server.wait_exit(START_TIMEOUT) != 0
    text = server.log_text()
    for part in expect:
        assert part in text, text
    assert "Booting worker" not in text  # refused in the master, before any worker started
