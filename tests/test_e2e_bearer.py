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

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .servers import HOST, TIMEOUT, E2EServer, e2e_servers, on_every_worker, redis_dump

pytestmark = pytest.mark.slow

START_TIMEOUT = 15  # seconds for gunicorn to listen with all its workers booted
WORKERS = 2
ALICE = {"username": "alice", "password": "secret"}
BOB = {"username": "bob", "password": "hunter2"}
PLANTED = "attacker-chosen-token-e2e-0123456789"
PREFIX = "fgt_"


class Server(E2EServer):
    """One gunicorn master running ``tests.e2e_bearer_app:app``."""

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


@pytest.fixture
def start_gunicorn(redis_server: Any, tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """``start(mode)``: gunicorn serving the bearer e2e app in ``mode``, stopped at teardown.

    Ready once its workers booted and ``GET /me`` gets the app's "missing token" 401.
    """
    with e2e_servers(
        Server,
        redis_server,
        tmp_path,
        app="tests.e2e_bearer_app:app",
        label="e2e-bearer",
        workers=WORKERS,
        probe="/me",
        start_timeout=START_TIMEOUT,
    ) as start:
        yield start


def me_everywhere(server: Server, redis_server: Any, token: str) -> list[requests.Response]:
    return on_every_worker(server, redis_server, lambda headers: server.me(token, headers))


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

    assert f"{server.prefix}app:{PLANTED}" in redis_dump(redis_server, server.prefix)


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
    assert not any(key.endswith("app:" + PLANTED) for key in redis_dump(redis_server, server.prefix))

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
    stored = redis_dump(redis_server, server.prefix)
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
