"""FixGuardMiddleware at the level of ASGI messages: what the app receives, what the server is sent.

Raw ASGI apps and a raw server loop (a list of messages in, a list out), so
every assertion is about the messages themselves: the body replayed to the
app as the same ``http.request`` messages, streaming passed through, a login
body held back within ``max_token_body``, a client that leaves mid-login,
lifespan, WebSocket handshakes, signals through the scope, configuration.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import fixguard
from fixguard import ConfigError, Event, MemoryStore
from fixguard.asgi import FixGuardMiddleware
from fixguard.record import LIVE, decode

KEY = secrets.token_urlsafe(48)
Message = dict[str, Any]


def guard(app: Any, **options: Any) -> FixGuardMiddleware:
    options.setdefault("secure", False)
    return FixGuardMiddleware(app, secret_key=KEY, **options)


def scope(
    path: str = "/", method: str = "GET", headers: list[tuple[str, str]] = (), kind: str = "http"
) -> Message:  # type: ignore[assignment]
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def call(app: Any, sc: Message, incoming: list[Message]) -> list[Message]:
    """One request through ``app``: ``incoming`` from the client, the messages the server is sent."""
    queue = list(incoming)
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a real server waits for the client
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(sc, receive, send)
    return sent


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def cookies_of(sent: list[Message]) -> dict[str, str]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = {}
    for k, v in start["headers"]:
        if k.lower() == b"set-cookie":
            name, _, value = v.decode().split(";", 1)[0].partition("=")
            out[name] = value
    return out


def status(sent: list[Message]) -> int:
    return int(next(m for m in sent if m["type"] == "http.response.start")["status"])


def body(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def responder(
    seen: list[Message] | None = None,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    chunks: list[bytes] = (b"ok",),  # type: ignore[assignment]
    before: Callable[[Message], None] | None = None,
) -> Any:
    """A raw ASGI app: reads the whole body (recording each message), answers ``chunks``."""

    async def app(sc: Message, receive: Any, send: Any) -> None:
        if sc["type"] != "http":
            return
        while True:
            message = await receive()
            if seen is not None:
                seen.append({**message, "scope": sc})
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if before is not None:
            before(sc)
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})

    return app


def session_app(sc: Message) -> tuple[list[tuple[bytes, bytes]], bytes]:
    return [(b"set-cookie", b"session=anon; Path=/")], b"hi"


def test_body_read_for_detection_is_replayed_as_the_same_messages() -> None:
    seen: list[Message] = []
    events: list[Event] = []
    app = guard(responder(seen), login=(), on_event=events.append)
    form = [b"username=alice&pass", b"word=secret", b""]
    incoming = [{"type": "http.request", "body": c, "more_body": i < 2} for i, c in enumerate(form)]
    sent = run(
        call(app, scope("/signin", "POST", [("content-type", "application/x-www-form-urlencoded")]), incoming)
    )
    assert status(sent) == 200
    assert [(m["body"], m["more_body"]) for m in seen] == [(m["body"], m["more_body"]) for m in incoming]


def test_a_body_over_max_detect_body_passes_uninspected_and_whole() -> None:
    seen: list[Message] = []
    app = guard(responder(seen), login=(), max_detect_body=8)
    incoming = [
        {"type": "http.request", "body": b"password=", "more_body": True},
        {"type": "http.request", "body": b"x" * 20, "more_body": False},
    ]
    headers = [("content-type", "application/x-www-form-urlencoded")]
    sent = run(call(app, scope("/signin", "POST", headers), incoming))
    assert status(sent) == 200
    assert b"".join(m["body"] for m in seen) == b"password=" + b"x" * 20
    with_length = [*headers, ("content-length", "29")]  # over the limit: not read at all
    seen.clear()
    run(call(app, scope("/signin", "POST", with_length), incoming))
    assert [m["body"] for m in seen] == [b"password=", b"x" * 20]


def test_detected_login_rotates_and_the_app_sees_the_credentials() -> None:
    seen: list[Message] = []
    app = guard(responder(seen, headers=[(b"set-cookie", b"session=user")]), login=())
    first = run(call(app, scope("/"), [{"type": "http.request", "body": b""}]))
    planted = cookies_of(first)["fixguard"]
    headers = [("content-type", "application/json"), ("cookie", f"fixguard={planted}")]
    sent = run(
        call(
            app,
            scope("/api/login", "POST", headers),
            [{"type": "http.request", "body": b'{"password": "x"}'}],
        )
    )
    assert cookies_of(sent)["fixguard"] != planted
    again = run(
        call(app, scope("/", headers=[("cookie", f"fixguard={planted}")]), [{"type": "http.request"}])
    )
    assert status(again) == 401


def test_streaming_responses_pass_through_message_by_message() -> None:
    chunks = [b"one", b"two", b"three"]
    sent = run(call(guard(responder(chunks=chunks)), scope("/"), [{"type": "http.request"}]))
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == chunks


def login_app(token: bytes, chunks: int = 1) -> Any:
    async def app(sc: Message, receive: Any, send: Any) -> None:
        await receive()
        doc = b'{"access_token": "' + token + b'", "pad": "' + b"p" * 64 + b'"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(doc)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        size = -(-len(doc) // chunks)
        parts = [doc[i : i + size] for i in range(0, len(doc), size)]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})

    return app


def test_login_body_is_held_back_and_its_token_swapped() -> None:
    app = guard(login_app(b"app-token", chunks=3), login=("POST /login",), token_fields=("access_token",))
    sent = run(call(app, scope("/login", "POST"), [{"type": "http.request"}]))
    doc = json.loads(body(sent))
    assert doc["access_token"].startswith("fgt_") and b"app-token" not in body(sent)
    start = sent[0]
    assert dict(start["headers"])[b"content-length"] == str(len(body(sent))).encode()


def test_login_body_over_max_token_body_passes_untouched() -> None:
    events: list[Event] = []
    app = guard(
        login_app(b"app-token", chunks=4),
        login=("POST /login",),
        token_fields=("access_token",),
        max_token_body=40,
        on_event=events.append,
    )
    sent = run(call(app, scope("/login", "POST"), [{"type": "http.request"}]))
    assert b'"access_token": "app-token"' in body(sent)
    assert json.loads(body(sent))["pad"] == "p" * 64
    assert [e.detail.get("reason") for e in events if e.kind == "token_body_skipped"] == [
        "larger than max_token_body"
    ]


def live_session(app: Any) -> str:
    sent = run(call(app, scope("/"), [{"type": "http.request"}]))
    return cookies_of(sent)["fixguard"]


@pytest.mark.parametrize("how", ["disconnect", "cancelled", "raises"])
def test_a_client_leaving_mid_login_leaves_no_half_rotated_session(how: str) -> None:
    store = MemoryStore()

    async def app(sc: Message, receive: Any, send: Any) -> None:
        if sc["path"] == "/":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"session=s1")]}
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if how == "raises":
            raise RuntimeError("the app failed mid-login")
        message = await receive()
        if how == "disconnect":
            assert message["type"] == "http.disconnect"
            return  # the app gives up: nothing sent
        await asyncio.sleep(3600)  # cancelled by the server when the client leaves

    g = guard(app, store=store, login=("POST /login",), settle_time=0)
    signed = live_session(g)
    key = g.ids.verify(signed).key  # type: ignore[union-attr]
    login = scope("/login", "POST", [("cookie", f"fixguard={signed}")])

    async def scenario() -> None:
        incoming = [{"type": "http.disconnect"}] if how == "disconnect" else []
        task = asyncio.create_task(call(g, login, incoming))
        await asyncio.sleep(0.05)
        if how == "cancelled":
            task.cancel()
        with pytest.raises((asyncio.CancelledError, RuntimeError)) if how != "disconnect" else _nothing():
            await task

    run(scenario())
    value = store.get(key)
    assert value is not None and decode(value).state == LIVE  # thawed: the session goes on
    sent = run(call(g, scope("/", headers=[("cookie", f"fixguard={signed}")]), [{"type": "http.request"}]))
    assert status(sent) == 200


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_lifespan_passes_through_untouched() -> None:
    seen: list[Message] = []

    async def app(sc: Message, receive: Any, send: Any) -> None:
        seen.append(sc)
        message = await receive()
        await send({"type": "lifespan.startup.complete", "got": message["type"]})

    sc = {"type": "lifespan", "asgi": {"version": "3.0"}}
    sent = run(call(guard(app), sc, [{"type": "lifespan.startup"}]))
    assert seen == [sc] and sent == [{"type": "lifespan.startup.complete", "got": "lifespan.startup"}]


def test_scope_session_and_signal_with_an_asgi_scope() -> None:
    infos: list[Any] = []

    def signal(sc: Message) -> None:
        infos.append(sc["fixguard.session"])
        if sc["path"] == "/welcome":
            fixguard.signal(sc, "login", subject="alice")

    store = MemoryStore()
    g = guard(responder(before=signal, headers=[(b"set-cookie", b"session=s")]), store=store, login=())
    signed = live_session(g)
    sent = run(
        call(g, scope("/welcome", "POST", [("cookie", f"fixguard={signed}")]), [{"type": "http.request"}])
    )
    fresh = cookies_of(sent)["fixguard"]
    assert fresh != signed and infos[-1].state == "live" and not infos[-1].authenticated
    run(call(g, scope("/", headers=[("cookie", f"fixguard={fresh}")]), [{"type": "http.request"}]))
    assert infos[-1].authenticated and infos[-1].subject == "alice"
    assert [s.fingerprint for s in store.sessions("alice")] == [g.ids.verify(fresh).key[:12]]  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        fixguard.signal(scope("/"), "login")  # a scope FixGuardMiddleware never saw


def test_fixguard_event_header_logs_out() -> None:
    g = guard(responder(headers=[(b"fixguard-event", b"logout"), (b"x-kept", b"1")]), login=(), logout=())
    signed = live_session(guard(responder(headers=[(b"set-cookie", b"session=s")]), store=g.store))
    sent = run(call(g, scope("/bye", "POST", [("cookie", f"fixguard={signed}")]), [{"type": "http.request"}]))
    names = [k for k, _ in sent[0]["headers"]]
    assert b"fixguard-event" not in names and b"x-kept" in names
    assert cookies_of(sent)["fixguard"] == ""


def ws_app(seen: list[Message]) -> Any:
    async def app(sc: Message, receive: Any, send: Any) -> None:
        seen.append(sc)
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"set-cookie", b"session=leak")]})
        await send({"type": "websocket.close", "code": 1000})

    return app


@pytest.mark.parametrize("extension", [True, False])
def test_websocket_with_a_retired_id_is_refused_before_the_app(extension: bool) -> None:
    seen: list[Message] = []
    http = guard(responder(headers=[(b"set-cookie", b"session=s")]), login=("POST /login",))
    planted = live_session(http)
    run(call(http, scope("/login", "POST", [("cookie", f"fixguard={planted}")]), [{"type": "http.request"}]))
    g = guard(ws_app(seen), store=http.store)
    sc = scope("/ws", headers=[("cookie", f"fixguard={planted}")], kind="websocket")
    if extension:
        sc["extensions"] = {"websocket.http.response": {}}
    sent = run(call(g, sc, [{"type": "websocket.connect"}]))
    assert seen == []
    if extension:
        assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 403
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]


def test_websocket_handshake_carries_the_live_sessions_jar() -> None:
    seen: list[Message] = []
    http = guard(responder(headers=[(b"set-cookie", b"session=server-side")]))
    signed = live_session(http)
    g = guard(ws_app(seen), store=http.store)
    sc = scope("/ws", headers=[("cookie", f"fixguard={signed}; session=forged")], kind="websocket")
    sent = run(call(g, sc, [{"type": "websocket.connect"}]))
    assert dict(seen[0]["headers"])[b"cookie"] == b"session=server-side"
    assert seen[0]["fixguard.session"].state == "live"
    assert sent[0] == {"type": "websocket.accept", "headers": []}  # the vaulted cookie never leaves


def test_configuration_is_shared_with_fixguard(tmp_path: Path) -> None:
    env = {"FIXGUARD_SECRET_KEY": KEY, "FIXGUARD_APP_COOKIES": "sid", "FIXGUARD_SECURE": "false"}
    g = FixGuardMiddleware.from_env(responder(), env)
    assert g.settings.app_cookies == ("sid",) and g.settings.secure is False
    path = tmp_path / "fixguard.toml"
    path.write_text(f'[fixguard]\nsecret_key = "{KEY}"\nlogin = ["POST /signin"]\n')
    assert [
        r.signal for r in FixGuardMiddleware.from_file(responder(), path).rules.match("POST", "/signin")
    ] == ["login"]
    with pytest.raises(ConfigError, match="already wrapped"):
        FixGuardMiddleware(g, secret_key=KEY)
    with pytest.raises(ConfigError, match="secret_key"):
        FixGuardMiddleware.from_env(responder(), {})


def test_starlette_add_middleware() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.scope["fixguard.session"].state)

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(FixGuardMiddleware, secret_key=KEY, app_cookies=("session",), secure=False)
    sent = run(call(app, scope("/"), [{"type": "http.request"}]))
    assert body(sent) == b"none"


def test_installed_twice_is_refused() -> None:
    events: list[Event] = []
    inner = guard(responder(), on_event=events.append)

    async def between(sc: Message, receive: Any, send: Any) -> None:  # e.g. another middleware
        await inner(sc, receive, send)

    outer = guard(between)
    sent = run(call(outer, scope("/"), [{"type": "http.request"}]))
    assert status(sent) == 500 and [e.kind for e in events] == ["installed_twice"]


def test_a_redis_that_does_not_answer_is_a_503_and_redis_url_builds_an_async_store() -> None:
    from fixguard.stores.redis import RedisStore
    from fixguard.stores.redis_async import AsyncRedisStore

    g = guard(responder(), redis_url="redis://127.0.0.1:1/0")
    assert isinstance(g.store, AsyncRedisStore)
    _, signed = g.ids.mint()
    sent = run(call(g, scope("/", headers=[("cookie", f"fixguard={signed}")]), [{"type": "http.request"}]))
    assert status(sent) == 503 and b"ok" not in body(sent)
    with pytest.raises(ConfigError, match="block the event loop"):
        guard(responder(), store=RedisStore.from_url("redis://127.0.0.1:1/0"))
