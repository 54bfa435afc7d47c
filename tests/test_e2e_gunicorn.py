"""End to end: the fixation attack over loopback against real gunicorn, 3 sync workers, one Redis.

``tests/e2e_app.py`` serves :mod:`examples.basic_auth_app` with its server-side
sessions in the tests' own redis-server (see ``conftest.py``), bare or behind
fixguard with a :class:`~fixguard.RedisStore` on that same server. Attacker and
victim are separate ``requests.Session`` objects, i.e. separate cookie jars.
The bare app must fall to the attack — otherwise the protected run proves
nothing — and the protected one must refuse the attacker while the victim's
session keeps working on every worker.
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
WORKERS = 3
HOST = "127.0.0.1"
FIXGUARD_401 = "This session has ended. Please sign in again."
ALICE = ("alice", "secret")


def _no_control_socket() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (recent versions put it in ~/.gunicorn)."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


_NO_CONTROL_SOCKET = _no_control_socket()


@dataclass
class Server:
    """One gunicorn master running ``tests.e2e_app:app``."""

    mode: str
    proc: subprocess.Popen[bytes]
    log: Path
    events_file: Path
    prefix: str
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def get(self, client: requests.Session, path: str, **kwargs: Any) -> requests.Response:
        return client.get(self.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def post(self, client: requests.Session, path: str, **kwargs: Any) -> requests.Response:
        return client.post(self.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def replayer(self, path: str, fixguard_cookie: str) -> Callable[[dict[str, str]], requests.Response]:
        """``send(headers)`` for :func:`on_every_worker`: ``GET path`` with only this fixguard cookie."""

        def send(headers: dict[str, str]) -> requests.Response:
            headers = {**headers, "Cookie": f"fixguard={fixguard_cookie}"}
            return requests.get(self.base + path, headers=headers, timeout=TIMEOUT, allow_redirects=False)

        return send

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
        """Until gunicorn listens, has booted its workers, and answers over HTTP."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn ({self.mode}) exited with {self.proc.returncode}:\n{self.log_text()}")
            text = self.log_text()
            if "Traceback" in text or "exited with code" in text:  # a worker failed to boot
                pytest.fail(f"gunicorn ({self.mode}) could not load the app:\n{text}")
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if found and text.count("Booting worker with pid") >= WORKERS:
                self.port = int(found.group(1))
                try:
                    probe = requests.get(self.base + "/profile", timeout=1)
                except requests.RequestException:
                    pass
                else:
                    if probe.status_code == 401:  # the app's "Not logged in": it answers
                        return
            time.sleep(0.05)
        pytest.fail(f"gunicorn ({self.mode}) not ready within {START_TIMEOUT} s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM to the master, then SIGKILL to its whole process group; always reaped."""
        if self.proc.returncode is not None:
            return  # it died and was reaped already: its PID is no longer ours to signal
        self.proc.send_signal(signal.SIGTERM)  # graceful: workers finish, then exit
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # WNOWAIT leaves the master a zombie, so its PID (our process group's ID)
            # cannot be reused by anyone before the killpg below.
            if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers, or a master that hung
        self.proc.wait(timeout=5)


@pytest.fixture
def start_gunicorn(redis_server: Any, tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """``start(mode)``: gunicorn serving the e2e app in ``mode``, stopped at teardown."""
    redis_server.start()  # a fault test elsewhere may have left it stopped
    servers: list[Server] = []

    def start(mode: str) -> Server:
        prefix = f"e2e-{mode}-{secrets.token_hex(4)}:"
        log = tmp_path / f"gunicorn-{mode}.log"
        events = tmp_path / f"events-{mode}.jsonl"
        env = {
            **os.environ,
            "FIXGUARD_E2E_MODE": mode,
            "FIXGUARD_E2E_REDIS_URL": redis_server.url,
            "FIXGUARD_E2E_PREFIX": prefix,
            "FIXGUARD_E2E_SECRET": secrets.token_urlsafe(48),
            "FIXGUARD_E2E_EVENTS": str(events),
        }
        command = [
            sys.executable, "-m", "gunicorn",
            "--chdir", str(REPO),
            "-w", str(WORKERS), "-k", "sync",
            "-b", f"{HOST}:0",  # the kernel picks a free port; gunicorn logs which
            "--timeout", "10", "--graceful-timeout", "2",
            "--log-level", "info", "--error-logfile", "-",
            *_NO_CONTROL_SOCKET,
            "tests.e2e_app:app",
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


def _cookie(client: requests.Session, name: str) -> str:
    value = client.cookies.get(name)
    assert value, f"no {name!r} cookie in the jar: {client.cookies.get_dict()}"
    return value


def on_every_worker(
    server: Server, redis_server: Any, send: Callable[[dict[str, str]], requests.Response]
) -> list[requests.Response]:
    """``send(headers)`` once per worker, in parallel, each answered by a different worker.

    The first ``WORKERS - 1`` requests carry ``X-E2E-Hold`` (see ``e2e_app``): each
    is parked in its worker until released, so the next one must be accepted by a
    worker that is still free. All are released once the last one has answered.
    """
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


def _redis_dump(redis_server: Any, prefix: str) -> dict[str, bytes]:
    client = redis_server.client()
    try:
        return {key.decode(): client.get(key) or b"" for key in client.scan_iter(match=prefix + "*")}
    finally:
        client.close()


def test_bare_app_falls_to_fixation_across_workers(
    start_gunicorn: Callable[[str], Server], redis_server: Any
) -> None:
    server = start_gunicorn("bare")
    attacker, victim = requests.Session(), requests.Session()

    # 1. The attacker visits and is given a session.
    first = server.get(attacker, "/")
    assert first.status_code == 200, first.text
    planted = _cookie(attacker, "session")

    # 2. He plants it in the victim's browser.
    victim.cookies.set("session", planted, domain=HOST, path="/")
    seen = server.get(victim, "/")
    assert seen.text == "Hello anonymous visitor, visit #2\n"  # the attacker's session, whichever worker

    # 3. The victim logs in; the app keeps the planted ID.
    login = server.post(victim, "/login", auth=ALICE)
    assert login.status_code == 200 and login.text == "Logged in as alice\n"
    assert victim.cookies["session"] == planted

    # 4. The attacker replays his ID and is alice, on every worker.
    stolen = on_every_worker(server, redis_server, lambda h: server.get(attacker, "/profile", headers=h))
    for response in stolen:
        assert response.status_code == 200, "the bare app should fall to the attack"
        assert response.text == "Profile of alice\n"
    assert {_pid(response) for response in stolen} == server.worker_pids()

    # The app's state really is in the tests' Redis, under this run's prefix.
    assert f"{server.prefix}app:{planted}" in _redis_dump(redis_server, server.prefix)


def test_protected_app_blocks_fixation_across_workers(
    start_gunicorn: Callable[[str], Server], redis_server: Any
) -> None:
    server = start_gunicorn("protected")
    attacker, victim = requests.Session(), requests.Session()
    workers = server.worker_pids()
    assert len(workers) == WORKERS, server.log_text()

    # 1. The attacker visits: he holds fixguard's ID, never the app's cookie.
    first = server.get(attacker, "/")
    assert first.status_code == 200 and first.text == "Hello anonymous visitor, visit #1\n"
    assert "session" not in attacker.cookies
    pre_login = _cookie(attacker, "fixguard")

    # 2. Planted in the victim's browser: before login both share one anonymous session.
    victim.cookies.set("fixguard", pre_login, domain=HOST, path="/")
    seen = server.get(victim, "/")
    assert seen.text == "Hello anonymous visitor, visit #2\n"

    # 3. The victim logs in: a fresh ID, the planted one retired.
    login = server.post(victim, "/login", auth=ALICE)
    assert login.status_code == 200 and login.text == "Logged in as alice\n"
    assert "session" not in victim.cookies
    post_login = _cookie(victim, "fixguard")
    assert post_login != pre_login

    # 4. The attacker replays his ID: 401 from fixguard, cookie cleared, on every worker.
    refused = server.get(attacker, "/profile")
    assert refused.status_code == 401 and refused.text.strip() == FIXGUARD_401, refused.text
    assert "fixguard" not in attacker.cookies
    for path in ("/profile", "/"):
        for again in on_every_worker(server, redis_server, server.replayer(path, pre_login)):
            assert again.status_code == 401 and again.text.strip() == FIXGUARD_401, (path, again.text)

    # 5. The victim keeps working: 24 requests in a row, then 3 in parallel on the 3 workers.
    pids: set[int] = set()
    for n in range(12):
        profile = server.get(victim, "/profile")
        assert profile.status_code == 200 and profile.text == "Profile of alice\n", (n, profile.text)
        home = server.get(victim, "/")
        assert home.status_code == 200 and home.text == f"Hello alice, visit #{n + 3}\n", (n, home.text)
        assert "fixguard" not in profile.cookies and "fixguard" not in home.cookies  # no re-issue
        pids |= {_pid(profile), _pid(home)}
    parallel = on_every_worker(server, redis_server, lambda h: server.get(victim, "/profile", headers=h))
    for profile in parallel:
        assert profile.status_code == 200 and profile.text == "Profile of alice\n", profile.text
        pids.add(_pid(profile))
    assert victim.cookies["fixguard"] == post_login
    assert pids == workers, (pids, workers)

    # 6. Logout ends the session and retires the post-login ID too.
    bye = server.post(victim, "/logout")
    assert bye.status_code == 200 and bye.text == "Logged out\n"
    assert "fixguard" not in victim.cookies
    anonymous = server.get(victim, "/profile")
    assert anonymous.status_code == 401 and anonymous.text == "Not logged in\n"  # the app's, no cookie
    for old in (pre_login, post_login):
        for dead in on_every_worker(server, redis_server, server.replayer("/profile", old)):
            assert dead.status_code == 401 and dead.text.strip() == FIXGUARD_401, dead.text

    # fixguard saw it the same way, from several workers.
    events = server.events()
    kinds = [event["kind"] for event in events]
    assert kinds.count("rotation") == 1 and kinds.count("logout") == 1, kinds
    blocked = [event for event in events if event["kind"] == "fixation_blocked"]
    reasons = [event["reason"] for event in blocked]
    # pre-login ID: once by the attacker, twice on every worker, once more on every worker after logout
    assert reasons.count("login") == 1 + 2 * WORKERS + WORKERS, reasons
    assert reasons.count("logout") == WORKERS, reasons  # post-login ID, after logout
    assert len(reasons) == 1 + 4 * WORKERS, reasons
    assert {event["pid"] for event in blocked} == workers

    # Everything lived in the tests' Redis, and no raw ID was ever written there.
    stored = _redis_dump(redis_server, server.prefix)
    assert any(key.startswith(server.prefix + "fg:") for key in stored), stored.keys()
    for cookie in (pre_login, post_login):
        raw_id = cookie.rsplit(".", 1)[0]  # the cookie is <id>.<signature>
        assert len(raw_id) >= 40, cookie
        assert not any(raw_id in key or raw_id.encode() in value for key, value in stored.items())
