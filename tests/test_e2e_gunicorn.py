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

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .servers import HOST, TIMEOUT, E2EServer, e2e_servers, on_every_worker, redis_dump, worker_pid

pytestmark = pytest.mark.slow

START_TIMEOUT = 15  # seconds for gunicorn to listen with all its workers booted
WORKERS = 3
FIXGUARD_401 = "This session has ended. Please sign in again."
ALICE = ("alice", "secret")


class Server(E2EServer):
    """One gunicorn master running ``tests.e2e_app:app``."""

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


@pytest.fixture
def start_gunicorn(redis_server: Any, tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """``start(mode)``: gunicorn serving the e2e app in ``mode``, stopped at teardown.

    Ready once its workers booted and ``GET /profile`` gets the app's "Not logged in" 401.
    """
    with e2e_servers(
        Server,
        redis_server,
        tmp_path,
        app="tests.e2e_app:app",
        label="e2e",
        workers=WORKERS,
        probe="/profile",
        start_timeout=START_TIMEOUT,
    ) as start:
        yield start


def _cookie(client: requests.Session, name: str) -> str:
    value = client.cookies.get(name)
    assert value, f"no {name!r} cookie in the jar: {client.cookies.get_dict()}"
    return value


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
    assert {worker_pid(response) for response in stolen} == server.worker_pids()

    # The app's state really is in the tests' Redis, under this run's prefix.
    assert f"{server.prefix}app:{planted}" in redis_dump(redis_server, server.prefix)


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

    # 4. The attacker replays his ID: 401 from fixguard on every worker. Moments after the
    #    login the refusal leaves his cookie alone (it could be the victim's parallel request).
    refused = server.get(attacker, "/profile")
    assert refused.status_code == 401 and refused.text.strip() == FIXGUARD_401, refused.text
    assert "set-cookie" not in refused.headers and _cookie(attacker, "fixguard") == pre_login
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
        pids |= {worker_pid(profile), worker_pid(home)}
    parallel = on_every_worker(server, redis_server, lambda h: server.get(victim, "/profile", headers=h))
    for profile in parallel:
        assert profile.status_code == 200 and profile.text == "Profile of alice\n", profile.text
        pids.add(worker_pid(profile))
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
    stored = redis_dump(redis_server, server.prefix)
    assert any(key.startswith(server.prefix + "fg:") for key in stored), stored.keys()
    for cookie in (pre_login, post_login):
        raw_id = cookie.rsplit(".", 1)[0]  # the cookie is <id>.<signature>
        assert len(raw_id) >= 40, cookie
        assert not any(raw_id in key or raw_id.encode() in value for key, value in stored.items())
