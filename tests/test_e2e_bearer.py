"""End to end: the bearer-token fixation attacks against real gunicorn, 2 sync workers, one Redis.

``tests/e2e_bearer_app.py`` serves :mod:`examples.bearer_app` with its token
map in the tests' own redis-server (see ``conftest.py``), bare or behind
fixguard with a :class:`~fixguard.RedisStore` on that same server. Attacker
and victim are separate ``requests.Session`` objects. The bare API must fall
to each attack, on every worker, or the protected run proves nothing; the
protected one must refuse the attacker on every worker while the victim's
fixguard token keeps working on every worker (so the token vault really
lives in Redis, not in one process).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 5  # seconds, for every HTTP request
START_TIMEOUT = 15  # seconds for gunicorn to listen with all its workers booted
WORKERS = 2
HOST = "127.0.0.1"
ALICE = {"username": "alice", "password": "secret"}
BOB = {"username": "bob", "password": "hunter2"}
PLANTED = "attacker-chosen-token-e2e-0123456789"
PREFIX = "fgt_"


def _no_control_socket() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (recent versions put it in ~/.gunicorn)."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


@dataclass
class Server:
    """One gunicorn master running ``tests.e2e_bearer_app:app``."""

    mode: str
    proc: subprocess.Popen[bytes]
    log: Path
    events_file: Path
    prefix: str
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def request(
        self, method: str, path: str, *, token: str | None = None, client: Any = requests, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return client.request(  # type: ignore[no-any-return]
            method, self.base + path, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs
        )

    def login(self, path: str = "/login", *, token: str | None = None, client: Any = requests) -> str:
        answer = self.request("POST", path, token=token, client=client, json=ALICE)
        assert answer.status_code == 200, answer.text
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        return str(answer.json()["access_token"])

    def me(self, token: str | None, headers: dict[str, str] | None = None) -> requests.Response:
        return self.request("GET", "/me", token=token, headers=headers or {})

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line]

    def worker_pids(self) -> set[int]:
        """PIDs of the master's live children (its workers), from /proc."""
        children: set[int] = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("PPid:"):
                        if int(line.split()[1]) == self.proc.pid:
                            children.add(int(status.parent.name))
                        break
        return children

    def wait_ready(self) -> None:
        """Until gunicorn listens, has booted its workers, and the app answers over HTTP."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn ({self.mode}) exited with {self.proc.returncode}:\n{self.log_text()}")
            text = self.log_text()
            if "Traceback" in text or "exited with code" in text:
                pytest.fail(f"gunicorn ({self.mode}) could not load the app:\n{text}")
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if found and text.count("Booting worker with pid") >= WORKERS:
                self.port = int(found.group(1))
                try:
                    probe = requests.get(self.base + "/me", timeout=1)
                except requests.RequestException:
                    pass
                else:
                    if probe.status_code == 401:  # the app's "missing token": it answers
                        return
            time.sleep(0.05)
        pytest.fail(f"gunicorn ({self.mode}) not ready within {START_TIMEOUT} s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM to the master, then SIGKILL to its whole process group; always reaped."""
        if self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # WNOWAIT keeps the master a zombie, so its PID (the group ID) cannot be reused before killpg.
            if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


@pytest.fixture
def start_gunicorn(redis_server: Any, tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """``start(mode)``: gunicorn serving the bearer e2e app in ``mode``, stopped at teardown."""
    redis_server.start()  # a fault test elsewhere may have left it stopped
    servers: list[Server] = []

    def start(mode: str) -> Server:
        prefix = f"e2e-bearer-{mode}-{secrets.token_hex(4)}:"
        log = tmp_path / f"gunicorn-{mode}.log"
        events = tmp_path / f"events-{mode}.jsonl"
        env = {
            **os.environ,
            "FIXGUARD_E2E_MODE": mode,
            "FIXGUARD_E2E_REDIS_URL": redis_server.url,
            "FIXGUARD_E2E_PREFIX": prefix,
            "FIXGUARD_E2E_SECRET": secrets.token_urlsafe(48),
            "FIXGUARD_E2E_APP_KEY": secrets.token_hex(32),
            "FIXGUARD_E2E_EVENTS": str(events),
        }
        command = [
            sys.executable, "-m", "gunicorn",
            "--chdir", str(REPO),
            "-w", str(WORKERS), "-k", "sync",
            "-b", f"{HOST}:0",
            "--timeout", "10", "--graceful-timeout", "2",
            "--log-level", "info", "--error-logfile", "-",
            *_no_control_socket(),
            "tests.e2e_bearer_app:app",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(mode, proc, log, events, prefix)
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def _pid(response: requests.Response) -> int:
    return int(response.headers["X-Worker-Pid"])


def on_every_worker(
    server: Server, redis_server: Any, send: Callable[[dict[str, str]], requests.Response]
) -> list[requests.Response]:
    """``send(headers)`` once per worker: the first is parked in its worker, so the next needs the other."""
    client = redis_server.client()
    tokens = [secrets.token_hex(8) for _ in range(WORKERS - 1)]
    try:
        with ThreadPoolExecutor(len(tokens)) as pool:
            try:
                held = []
                for token in tokens:
                    held.append(pool.submit(send, {"X-E2E-Hold": token}))
                    parked = client.blpop([f"{server.prefix}held:{token}"], timeout=TIMEOUT)
                    assert parked is not None, f"a held request never reached a worker:\n{server.log_text()}"
                last = send({})
            finally:
                for token in tokens:
                    client.rpush(f"{server.prefix}release:{token}", "go")
            responses = [future.result(timeout=TIMEOUT + 1) for future in held] + [last]
    finally:
        client.close()
    assert len({_pid(response) for response in responses}) == WORKERS, [_pid(r) for r in responses]
    return responses


def me_everywhere(server: Server, redis_server: Any, token: str) -> list[requests.Response]:
    return on_every_worker(server, redis_server, lambda headers: server.me(token, headers))


def _redis_dump(redis_server: Any, prefix: str) -> dict[str, bytes]:
    """Every key under ``prefix`` and its value (a set, such as a subject index, as its members joined)."""
    client = redis_server.client()
    try:
        dump: dict[str, bytes] = {}
        for key in client.scan_iter(match=prefix + "*"):
            if client.type(key) == b"set":
                dump[key.decode()] = b"\n".join(sorted(client.smembers(key)))
            else:
                dump[key.decode()] = client.get(key) or b""
        return dump
    finally:
        client.close()


def _user(response: requests.Response) -> str | None:
    return str(response.json()["user"]) if response.status_code == 200 else None


def test_bare_api_falls_to_token_fixation_across_workers(
    start_gunicorn: Callable[[str], Server], redis_server: Any
) -> None:
    server = start_gunicorn("bare")

    # Echo: the victim's login carries the attacker's token; the app keeps it.
    assert server.me(PLANTED).status_code == 401
    assert server.login(token=PLANTED) == PLANTED
    for answer in me_everywhere(server, redis_server, PLANTED):
        assert _user(answer) == "alice", "the bare API should fall to the echo attack"

    # JWT: a copy from before logout and before the next login still opens alice's account.
    old = server.login("/jwt/login")
    assert old.startswith("eyJ")
    assert server.request("POST", "/logout", token=old).status_code == 200
    assert server.login("/jwt/login", token=old) != old
    for answer in me_everywhere(server, redis_server, old):
        assert answer.json() == {"user": "alice", "via": "jwt", "mfa": False}

    # Cookie: a planted api_token is kept at login.
    victim, attacker = requests.Session(), requests.Session()
    victim.cookies.set("api_token", PLANTED + "-cookie", domain=HOST, path="/")
    server.request("POST", "/cookie/login", client=victim, json=ALICE)
    assert victim.cookies["api_token"] == PLANTED + "-cookie"
    attacker.cookies.set("api_token", PLANTED + "-cookie", domain=HOST, path="/")
    assert _user(server.request("GET", "/cookie/me", client=attacker)) == "alice"

    assert f"{server.prefix}app:{PLANTED}" in _redis_dump(redis_server, server.prefix)


def test_protected_api_blocks_token_fixation_across_workers(
    start_gunicorn: Callable[[str], Server], redis_server: Any
) -> None:
    server = start_gunicorn("protected")
    workers = server.worker_pids()
    assert len(workers) == WORKERS, server.log_text()

    # Echo: the planted token never reaches the app; the victim gets a fixguard token.
    hers = server.login(token=PLANTED)
    assert hers.startswith(PREFIX) and PLANTED not in hers
    for answer in me_everywhere(server, redis_server, hers):  # the vault is shared: every worker translates
        assert answer.json() == {"user": "alice", "via": "token", "mfa": False}
    for answer in me_everywhere(server, redis_server, PLANTED):
        assert answer.status_code == 401 and "alice" not in answer.text, answer.text
    assert not any(key.endswith("app:" + PLANTED) for key in _redis_dump(redis_server, server.prefix))

    # JWT: the token from before the next login, then the one from before logout, are dead everywhere.
    old = server.login("/jwt/login")
    assert old.startswith(PREFIX)
    new = server.login("/jwt/login", token=old)
    assert new.startswith(PREFIX) and new != old
    for answer in me_everywhere(server, redis_server, old):
        assert answer.status_code == 401 and "alice" not in answer.text, answer.text
    assert [_user(a) for a in me_everywhere(server, redis_server, new)] == ["alice"] * WORKERS
    assert server.request("POST", "/logout", token=new).status_code == 200
    for answer in me_everywhere(server, redis_server, new):
        assert answer.status_code == 401 and "alice" not in answer.text, answer.text

    # Cookie: the planted api_token is dropped; the victim's session works on every worker.
    victim, attacker = requests.Session(), requests.Session()
    victim.cookies.set("api_token", PLANTED + "-cookie", domain=HOST, path="/")
    login = server.request("POST", "/cookie/login", client=victim, json=ALICE)
    assert login.status_code == 200 and "api_token" not in login.cookies
    guard = victim.cookies["fixguard"]
    for answer in on_every_worker(
        server,
        redis_server,
        lambda h: server.request("GET", "/cookie/me", headers={**h, "Cookie": f"fixguard={guard}"}),
    ):
        assert _user(answer) == "alice", answer.text
    attacker.cookies.set("api_token", PLANTED + "-cookie", domain=HOST, path="/")
    replay = server.request("GET", "/cookie/me", client=attacker)
    assert replay.status_code == 401 and replay.json() == {"error": "missing token"}

    # fixguard saw it from both workers.
    events = server.events()
    kinds = [event["kind"] for event in events]
    assert kinds.count("token_blocked") == WORKERS, kinds
    blocked = [event for event in events if event["kind"] in ("fixation_blocked", "token_blocked")]
    assert {event["pid"] for event in blocked} == workers

    # No fixguard token, nor its ID, is written to Redis.
    stored = _redis_dump(redis_server, server.prefix)
    for token in (hers, old, new):
        raw_id = token.removeprefix(PREFIX).rsplit(".", 1)[0]
        assert len(raw_id) >= 40, token
        assert not any(raw_id in key or raw_id.encode() in value for key, value in stored.items())


def test_protected_api_tab_after_bearer(start_gunicorn: Callable[[str], Server], redis_server: Any) -> None:
    """``Authorization: Bearer<TAB>token`` over real HTTP: gunicorn passes it, the app reads it."""
    server = start_gunicorn("protected")
    header = {"Authorization": f"Bearer\t{PLANTED}-tab"}
    login = server.request("POST", "/login", headers=header, json=ALICE)
    assert login.status_code == 200
    assert login.json()["access_token"].startswith(PREFIX)
    for answer in on_every_worker(server, redis_server, lambda h: server.me(None, {**h, **header})):
        assert answer.status_code == 401 and "alice" not in answer.text, answer.text
