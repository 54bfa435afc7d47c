"""End to end under real servers: uvicorn with 2 workers on Redis, WebSocket, and a mixed fleet.

uvicorn serves :mod:`tests.e2e_mixed_app`'s ASGI app behind
FixGuardMiddleware (``from_env``: an AsyncRedisStore on the tests' own
redis-server); gunicorn serves the same app as WSGI behind FixGuard, with the
same key, Redis and prefix. Requests go over loopback with ``requests`` (a
new connection each, so both workers answer), WebSockets with the
``websockets`` client.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import RedisServer
from .servers import HOST, REPO, Gunicorns

TIMEOUT = 5
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn(env: dict[str, str], log: Path, workers: int = WORKERS) -> Iterator[str]:
    """``uvicorn --workers N`` serving the ASGI app; its base URL once every worker is up."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "tests.e2e_mixed_app:create_asgi",
        "--host", HOST, "--port", str(port), "--workers", str(workers), "--log-level", "info",
        "--ws", "websockets",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while log.read_text(errors="replace").count("Application startup complete") < workers:
            failed = "Traceback" in log.read_text(errors="replace")
            if failed or proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            stop_by = time.monotonic() + 10
            # WNOWAIT keeps the master a zombie, so its process group is still ours to kill
            while time.monotonic() < stop_by:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    break
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # a worker left behind
        proc.wait(timeout=10)


def fleet_env(redis_server: RedisServer) -> dict[str, str]:
    redis_server.start()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FIXGUARD_")}  # the suite's own
    return {
        **inherited,
        "FIXGUARD_SECRET_KEY": secrets.token_urlsafe(48),
        "FIXGUARD_REDIS_URL": redis_server.url,
        "FIXGUARD_REDIS_PREFIX": f"fleet-{secrets.token_hex(4)}:",
        "FIXGUARD_SECURE": "false",
        "E2E_MIXED_APP_KEY": secrets.token_hex(16),
    }


def get(base: str, path: str, cookie: str | None = None, method: str = "GET") -> requests.Response:
    headers = {"Connection": "close"}
    if cookie is not None:
        headers["Cookie"] = f"fixguard={cookie}"
    return requests.request(method, base + path, headers=headers, timeout=TIMEOUT)


def on_every_worker(base: str, check: Callable[[requests.Response], None], path: str, cookie: str) -> None:
    """Ask until each of the workers has answered (new connections spread over them); check each."""
    seen: set[str] = set()
    for _ in range(200):
        response = get(base, path, cookie)
        check(response)
        seen.add(response.headers.get("X-Worker-Pid", "fixguard"))
        if len(seen - {"fixguard"}) >= WORKERS:
            return
    pytest.fail(f"only workers {seen} answered")


def new_cookie(response: requests.Response) -> str:
    value = response.cookies.get("fixguard")
    assert value, response.headers
    return value


def refused(response: requests.Response) -> None:
    assert response.status_code == 401 and "alice" not in response.text, response.text


def test_uvicorn_two_workers_on_redis_login_rotates_for_every_worker(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with uvicorn(fleet_env(redis_server), tmp_path / "uvicorn.log") as base:
        planted = new_cookie(get(base, "/"))

        def anonymous(response: requests.Response) -> None:
            assert response.status_code == 200 and response.text.startswith("anon-"), response.text

        on_every_worker(base, anonymous, "/whoami", planted)
        login = get(base, "/login", planted, method="POST")
        assert login.text == "welcome"
        fresh = new_cookie(login)
        assert fresh != planted
        on_every_worker(base, refused, "/whoami", planted)

        def alice(response: requests.Response) -> None:
            assert response.status_code == 200 and response.text == "alice", response.text

        on_every_worker(base, alice, "/whoami", fresh)


def test_websocket_handshake_with_a_retired_id_is_refused(redis_server: RedisServer, tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with uvicorn(fleet_env(redis_server), tmp_path / "uvicorn.log") as base:
        planted = new_cookie(get(base, "/"))
        fresh = new_cookie(get(base, "/login", planted, method="POST"))
        url = base.replace("http://", "ws://") + "/ws"
        with connect(url, additional_headers={"Cookie": f"fixguard={fresh}"}, open_timeout=TIMEOUT) as ws:
            text = str(ws.recv(timeout=TIMEOUT))
        assert text.startswith("cookie=session=alice.") and "fixguard" not in text  # the jar, not the ID
        with (
            pytest.raises(InvalidStatus) as caught,
            connect(url, additional_headers={"Cookie": f"fixguard={planted}"}, open_timeout=TIMEOUT),
        ):
            pass
        assert caught.value.response.status_code == 403


@pytest.mark.parametrize("login_through", ["gunicorn", "uvicorn"])
def test_mixed_fleet_a_login_through_one_retires_the_id_for_the_other(
    redis_server: RedisServer, tmp_path: Path, login_through: str
) -> None:
    env = fleet_env(redis_server)
    with Gunicorns(tmp_path) as pool, uvicorn(env, tmp_path / "uvicorn.log") as asgi:
        g = pool.start("wsgi", "tests.e2e_mixed_app:create_wsgi()", env, workers=WORKERS)
        g.wait_ready(
            within=30, probe=lambda base: requests.get(base + "/whoami", timeout=1).status_code == 200
        )
        servers: dict[str, Any] = {"gunicorn": g.base, "uvicorn": asgi}
        other = "uvicorn" if login_through == "gunicorn" else "gunicorn"
        planted = new_cookie(get(servers[other], "/"))  # the session starts on the other server
        seen = get(servers[login_through], "/whoami", planted)
        assert seen.status_code == 200 and seen.text.startswith("anon-")  # one session, both servers
        login = get(servers[login_through], "/login", planted, method="POST")
        fresh = new_cookie(login)
        refused(get(servers[other], "/whoami", planted))
        assert get(servers[other], "/whoami", fresh).text == "alice"
        assert get(servers[login_through], "/whoami", fresh).headers["X-Server"] == (
            "wsgi" if login_through == "gunicorn" else "asgi"
        )
