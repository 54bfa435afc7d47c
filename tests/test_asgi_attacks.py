"""The session fixation attack in ASGI, played for real against the four seed shapes.

The shapes live in :mod:`examples.asgi_app` (Starlette): an HMAC-signed cookie
echoed at login, Basic Auth with a server-side session, a bearer token echoed
at login, and a JWT that is never revoked. Each attack first runs against the
bare app, where it must work (a test that passes without fixguard proves
nothing), then against the app behind FixGuardMiddleware, where it must fail:
with MemoryStore and with AsyncRedisStore on a real redis-server, with login
rules and with credential detection alone (``login=()``).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest

from fixguard import Event

from .asgi_support import GUARD, Browser, run

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
asgi_app = importlib.import_module("examples.asgi_app")

KEY = secrets.token_urlsafe(48)
ALICE = {"username": "alice", "password": "secret"}
BOB = {"username": "bob", "password": "hunter2"}
BASIC_ALICE = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
MODES = ["rules", "detect"]


@pytest.fixture(autouse=True)
def fresh_app_state() -> None:
    asgi_app.reset()


def wrapped(store: Any, mode: str, events: list[Event] | None = None) -> Any:
    options: dict[str, Any] = {"secret_key": KEY, "secure": False, "store": store}
    if mode == "detect":
        options["login"] = ()  # no rule: the credentials in the request make it a login
    if events is not None:
        options["on_event"] = events.append
    return asgi_app.protect(asgi_app.create_app(), **options)


def bare_run(scenario: Any) -> None:
    asyncio.run(scenario(asgi_app.create_app()))


# -- bare: every attack works -----------------------------------------------------------


def test_bare_signed_cookie_is_echoed_at_login() -> None:
    async def scenario(app: Any) -> None:
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        victim.cookies["sid"] = attacker.cookies["sid"]  # planted
        assert (await victim.post("/login", data=ALICE)).text == "welcome"
        assert (await attacker.get("/profile")).text == "user=alice"

    bare_run(scenario)


def test_bare_basic_auth_binds_the_planted_session() -> None:
    async def scenario(app: Any) -> None:
        attacker, victim = Browser(app), Browser(app)
        attacker.cookies["session"] = victim.cookies["session"] = "chosen-by-the-attacker"
        assert (await victim.post("/basic/login", headers=BASIC_ALICE)).text == "welcome"
        assert (await attacker.get("/basic/profile")).text == "user=alice"

    bare_run(scenario)


def test_bare_bearer_token_is_echoed_at_login() -> None:
    async def scenario(app: Any) -> None:
        attacker, victim = Browser(app), Browser(app)
        attacker.bearer = victim.bearer = "chosen-by-the-attacker"
        assert (await victim.post("/token/login", json=ALICE)).json()[
            "access_token"
        ] == "chosen-by-the-attacker"
        assert (await attacker.get("/token/me")).json() == {"user": "alice"}

    bare_run(scenario)


def test_bare_jwt_outlives_logout() -> None:
    async def scenario(app: Any) -> None:
        attacker, victim = Browser(app), Browser(app)
        token = (await victim.post("/jwt/login", json=ALICE)).json()["access_token"]
        attacker.bearer = victim.bearer = token  # copied from a shared machine
        assert (await victim.post("/logout")).text == "bye"
        assert (await attacker.get("/jwt/me")).json() == {"user": "alice"}

    bare_run(scenario)


def test_bare_replay_racing_the_login_reads_the_victims_session() -> None:
    async def scenario(app: Any) -> None:
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        victim.cookies["sid"] = attacker.cookies["sid"]
        replay = asyncio.create_task(attacker.get("/slow-profile?delay=0.3"))
        await asyncio.sleep(0.05)
        await victim.post("/login", data=ALICE)
        assert (await replay).text == "user=alice"

    bare_run(scenario)


# -- wrapped: every attack fails -----------------------------------------------------------


def refused(response: Any) -> bool:
    """fixguard refused the request, or the app saw no one: never the victim."""
    return response.status_code in (401, 409) and "alice" not in response.text


@pytest.mark.parametrize("mode", MODES)
def test_signed_cookie_attack_is_blocked(async_store_spec: Any, mode: str) -> None:
    async def scenario(store: Any) -> None:
        events: list[Event] = []
        app = wrapped(store, mode, events)
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        assert set(attacker.cookies) == {GUARD}  # the app's sid stays server-side
        planted = attacker.cookies[GUARD]
        victim.cookies[GUARD] = planted
        assert (await victim.post("/login", data=ALICE)).text == "welcome"
        assert victim.cookies[GUARD] != planted
        assert refused(await attacker.get("/profile"))
        assert (await victim.get("/profile")).text == "user=alice"
        rotation = [e for e in events if e.kind == "rotation"]
        assert rotation and rotation[0].detail["via"] == ("rule" if mode == "rules" else "credentials")
        assert "fixation_blocked" in [e.kind for e in events]

    run(async_store_spec, scenario)


@pytest.mark.parametrize("mode", MODES)
def test_basic_auth_attack_is_blocked(async_store_spec: Any, mode: str) -> None:
    async def scenario(store: Any) -> None:
        app = wrapped(store, mode)
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        planted = attacker.cookies[GUARD]
        victim.cookies.update({GUARD: planted, "session": "chosen-by-the-attacker"})
        assert (await victim.post("/basic/login", headers=BASIC_ALICE)).text == "welcome"
        assert victim.cookies[GUARD] != planted
        assert refused(await attacker.get("/basic/profile"))
        attacker.cookies = {"session": "chosen-by-the-attacker"}  # the raw cookie never reached the app
        assert refused(await attacker.get("/basic/profile"))
        assert (await victim.get("/basic/profile", headers=BASIC_ALICE)).text == "user=alice"

    run(async_store_spec, scenario)


@pytest.mark.parametrize("mode", MODES)
def test_bearer_echo_attack_is_blocked(async_store_spec: Any, mode: str) -> None:
    async def scenario(store: Any) -> None:
        app = wrapped(store, mode)
        attacker, victim = Browser(app), Browser(app)
        attacker.bearer = victim.bearer = "chosen-by-the-attacker"
        login = await victim.post("/token/login", json=ALICE)
        token = login.json()["access_token"]
        assert token.startswith("fgt_") and int(login.headers["content-length"]) == len(login.content)
        assert refused(await attacker.get("/token/me"))
        if mode == "detect":
            return  # a fixguard token's holder is taken as logged in: detection does not look further
        # the attacker's own fixguard token, planted: burned by the victim's login (a rule)
        mine = (await attacker.post("/token/login", json=BOB, headers={"authorization": ""})).json()
        victim.bearer = attacker.bearer = mine["access_token"]
        theirs = (await victim.post("/token/login", json=ALICE)).json()["access_token"]
        assert theirs != mine["access_token"]
        assert refused(await attacker.get("/token/me"))
        victim.bearer = theirs
        assert (await victim.get("/token/me")).json() == {"user": "alice"}

    run(async_store_spec, scenario)


@pytest.mark.parametrize("mode", MODES)
def test_jwt_copy_dies_at_logout(async_store_spec: Any, mode: str) -> None:
    async def scenario(store: Any) -> None:
        app = wrapped(store, mode)
        attacker, victim = Browser(app), Browser(app)
        login = await victim.post("/jwt/login", json=ALICE)
        token = login.json()["access_token"]
        assert token.startswith("fgt_") and "eyJ" not in login.text  # the JWT never leaves the server
        attacker.bearer = victim.bearer = token
        assert (await victim.get("/jwt/me")).json() == {"user": "alice"}
        assert (await victim.post("/logout")).text == "bye"
        assert refused(await attacker.get("/jwt/me"))

    run(async_store_spec, scenario)


@pytest.mark.parametrize("mode", MODES)
def test_replay_racing_the_login_is_refused(async_store_spec: Any, mode: str) -> None:
    async def scenario(store: Any) -> None:
        app = wrapped(store, mode)
        attacker, victim = Browser(app), Browser(app)
        await attacker.get("/")
        victim.cookies[GUARD] = attacker.cookies[GUARD]
        replay = asyncio.create_task(attacker.get("/slow-profile?delay=0.3"))
        await asyncio.sleep(0.05)
        assert (await victim.post("/login", data=ALICE)).text == "welcome"
        answer = await replay
        assert answer.status_code == 409 and "alice" not in answer.text
        assert (await victim.get("/profile")).text == "user=alice"

    run(async_store_spec, scenario)
