"""FixGuardMiddleware: fixguard for ASGI apps (Starlette, FastAPI, Quart, Django's ASGI handler).

The same protection as the WSGI :class:`~fixguard.FixGuard`, from the same
core (:mod:`fixguard.core`): this module only moves ASGI messages. What it
trusts and refuses is the core's; what it adds is how not to block or lose
anything on an event loop:

* every store call is awaited (:class:`~fixguard.stores.AsyncRedisStore`, or a
  MemoryStore called directly), and the settle wait is ``asyncio.sleep``;
* a request body read for credential detection is bounded by
  ``max_detect_body`` and replayed to the app as the same ``http.request``
  messages; a login's JSON body held back for its tokens is bounded by
  ``max_token_body``; any other response streams through untouched;
* an app that fails, or a client that leaves (cancellation), before a login's
  answer went out undoes the freeze: no half-rotated session;
* a WebSocket handshake's cookies go through the vault; an ended session is
  refused before the app sees the connection (a 403 through the
  ``websocket.http.response`` extension when the server offers it, else
  ``websocket.close``); ``lifespan`` and other scopes pass through.

``scope["fixguard.session"]`` is the :class:`~fixguard.SessionInfo`;
``fixguard.signal(scope, "login", subject=...)`` works on the scope the app got.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from .asgi_io import (
    ASGIApp,
    BodyReader,
    Message,
    Receive,
    Scope,
    Send,
    app_headers,
    byte_headers,
    read_request,
    text_headers,
)
from .config import ConfigError
from .core.exchange import Exchange
from .core.guard import Guard
from .core.ops import Steps, drive_async
from .core.state import Answer, Request
from .events import Event
from .signals import ENVIRON_CONTEXT
from .stores.base import Store, StoreError

__all__ = ["FixGuardMiddleware"]

SCOPE_SESSION = "fixguard.session"
_WS_REFUSED = 403


class FixGuardMiddleware(Guard):
    """Wrap an ASGI app so that every login hands the client a fresh, server-minted session ID.

    ``app.add_middleware(FixGuardMiddleware, secret_key=..., app_cookies=("session",))``
    or ``FixGuardMiddleware(app, ...)``: the keywords, defaults, TOML keys and
    ``FIXGUARD_*`` variables of :class:`~fixguard.FixGuard`. ``redis_url`` makes
    an :class:`~fixguard.stores.AsyncRedisStore`.
    """

    app: ASGIApp
    asynchronous = True
    store_awaits = False

    def check_app(self, app: Any) -> None:
        if isinstance(app, FixGuardMiddleware):
            raise ConfigError(
                "this app is already wrapped by FixGuardMiddleware: wrap it once (two guards would "
                "each treat the other's cookie as foreign and break every login)"
            )

    def checked_store(self, store: Any) -> Any:
        #: Every store call is a coroutine to await (AsyncRedisStore); else a quick sync call.
        self.store_awaits = is_async_store(store)
        if store is None or self.store_awaits:
            return super().checked_store(store)
        redis_store = sys.modules.get("fixguard.stores.redis")
        if redis_store is not None and isinstance(store, redis_store.RedisStore):
            raise ConfigError(
                "RedisStore makes synchronous calls that would block the event loop: give "
                "FixGuardMiddleware an AsyncRedisStore (fixguard.stores.AsyncRedisStore.from_url(url)) "
                "or redis_url="
            )
        return super().checked_store(store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan and anything newer: not ours
            return
        outer = scope.get(ENVIRON_CONTEXT)
        if outer is not None and getattr(outer, "active", False):
            if getattr(outer, "g", None) is self:
                await self.app(scope, receive, send)  # the same request, dispatched again in-process
                return
            await self.installed_twice(scope, receive, send)
            return
        scope = dict(scope)  # the app's scope: ours to rewrite (headers, session)
        method = "GET" if kind == "websocket" else str(scope.get("method") or "GET").upper()
        request, cookie, authorization = read_request(scope, method)
        if kind == "websocket":
            await _WebSocketHandshake(self, scope, request).run(cookie, authorization, receive, send)
            return
        exchange = _HTTPExchange(self, scope, request, receive, send)
        refusal = await exchange.prepare_scope(cookie, authorization)
        del cookie, authorization  # this frame stays while the app runs: no secret in its locals
        await exchange.run(refusal)

    async def installed_twice(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Another FixGuard already handles this request: refuse loudly, never half-protect."""
        self.events.emit(
            Event(
                "installed_twice",
                None,
                str(scope.get("method", "GET")),
                str(scope.get("path", "")),
                "",
                {"hint": "fixguard is installed twice: keep one of the two"},
            )
        )
        body = b"Server misconfiguration: fixguard is installed twice. See the server log.\n"
        if scope.get("type") == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1011})
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def is_async_store(store: Any) -> bool:
    """A store whose calls are coroutines (:class:`~fixguard.stores.AsyncRedisStore`)."""
    return inspect.iscoroutinefunction(getattr(store, "get", None)) and isinstance(store, Store)


class _HTTPExchange(Exchange):
    """One HTTP request/response: the core's exchange plus ASGI's receive and send."""

    held = 0  # bytes of a login's body held back so far
    replaced = False  # the refusal went out instead: the app's messages go nowhere

    def __init__(
        self, guard: FixGuardMiddleware, scope: Scope, request: Request, receive: Receive, send: Send
    ) -> None:
        super().__init__(guard, request)
        self.scope = scope
        self.app = guard.app
        self.awaits = guard.store_awaits
        self.reader = BodyReader(receive, scope)
        self.server_send = send
        self.start: Message = {}

    async def drive(self, steps: Steps[Any]) -> Any:
        return await drive_async(steps, self.g.store, self.reader.read, self.awaits)

    async def run(self, refusal: Answer | None) -> None:
        """The refusal, or the app (after a login's settle wait), then undo a freeze left behind."""
        if refusal is not None:
            self.processed = True
            await self.send_answer(refusal)
            return
        try:
            if self.freeze_token:
                await self.drive(self.settle())
            await self.app(self.scope, self.reader.receive, self.send)
            if self.pending is not None and not self.replaced:
                await self.finish_body(
                    b"".join(self.pending.chunks), more=False
                )  # ended without a last message
        except BaseException:
            self.active = False
            await self.drive(self.abandon())  # the app failed or the client left: undo our freeze
            raise
        self.active = False
        if self.freeze_token:
            await self.drive(self.abandon())  # a no-op once the response was decided

    async def prepare_scope(self, cookie: str | None, authorization: str | None) -> Answer | None:
        """Run the request phase and rewrite the scope for the app; a refusal, or None."""
        scope = self.scope
        raw = scope.get("headers") or ()
        prepared = self.unneeded(cookie, authorization)
        if prepared is None:
            prepared = await self.drive(self.prepare(cookie, authorization))
        if prepared.refusal is not None:
            refusal: Answer = prepared.refusal
            return refusal
        scope["headers"] = app_headers(
            raw, prepared.cookie, prepared.authorization, prepared.drop_accept_encoding
        )
        scope[SCOPE_SESSION] = self.info()
        scope[ENVIRON_CONTEXT] = self
        return None

    async def send(self, message: Message) -> None:
        """The app's ``send``: decide at the response start, hold a login body, else pass through."""
        kind = message.get("type")
        if self.replaced:
            return
        if kind == "http.response.start" and not self.processed:
            raw = message.get("headers") or ()
            headers = text_headers(raw)
            self.processed = True
            out = self.settled(headers)
            if out is None:
                try:
                    out = await self.drive(self.respond(int(message.get("status", 500)), headers))
                except StoreError as exc:
                    self.replacement = self.store_down(exc)
            if self.replacement is not None:
                await self.send_answer(self.replacement)
                return
            if out is None:
                self.start = message  # a login: held back until its body is read
                return
            if out is not headers:
                message = {**message, "headers": byte_headers(out)}
            await self.server_send(message)
            if self.outcome:
                self.seal_outcome()
            return
        if kind == "http.response.body" and self.pending is not None:
            chunk = bytes(message.get("body") or b"")
            self.pending.chunks.append(chunk)
            self.held += len(chunk)
            more = bool(message.get("more_body", False))
            if self.held > self.g.settings.max_token_body:
                await self.finish_body(None, more)  # too large to read: it leaves untouched
            elif not more:
                await self.finish_body(b"".join(self.pending.chunks), more=False)
            return
        await self.server_send(message)

    async def finish_body(self, body: bytes | None, more: bool) -> None:
        """The held-back login: swap its tokens, rotate, then send it."""
        done = await self.drive(self.finish(body))
        if done is None:
            await self.send_answer(self.replacement)
            return
        out, data = done
        await self.server_send({**self.start, "headers": byte_headers(out)})
        self.seal_outcome()
        body_out = b"" if self.method == "HEAD" else bytes(data)
        await self.server_send({"type": "http.response.body", "body": body_out, "more_body": more})

    async def send_answer(self, answer: Answer | None) -> None:
        """fixguard's own answer (a refusal) instead of the app's."""
        assert answer is not None
        self.replaced = True
        status, headers, body = answer
        await self.server_send(
            {"type": "http.response.start", "status": int(status[:3]), "headers": byte_headers(headers)}
        )
        await self.server_send({"type": "http.response.body", "body": b"" if self.method == "HEAD" else body})


class _WebSocketHandshake(Exchange):
    """A WebSocket handshake: its cookies through the vault; an ended session refused first."""

    logins = False  # a handshake carries no login: it can neither rotate nor freeze

    def __init__(self, guard: FixGuardMiddleware, scope: Scope, request: Request) -> None:
        super().__init__(guard, request)
        self.scope = scope
        self.app = guard.app

    async def run(self, cookie: str | None, authorization: str | None, receive: Receive, send: Send) -> None:
        scope = self.scope
        raw = scope.get("headers") or ()
        prepared = await drive_async(self.prepare(cookie, authorization), self.g.store)
        del cookie, authorization  # this frame stays while the app runs: no secret in its locals
        if prepared.refusal is not None:
            await self.refuse(prepared.refusal, receive, send)
            return
        scope["headers"] = app_headers(raw, prepared.cookie, prepared.authorization, False)
        scope[SCOPE_SESSION] = self.info()
        scope[ENVIRON_CONTEXT] = self
        try:
            await self.app(scope, receive, self.guarded(send))
        finally:
            self.active = False

    def guarded(self, send: Send) -> Send:
        """The app's ``send``: an accept never sets fixguard's cookie or a vaulted app cookie."""
        names = self.g.app_cookie_names | {self.g.settings.cookie_name}

        async def guarded_send(message: Message) -> None:
            if message.get("type") == "websocket.accept" and message.get("headers"):
                kept = []
                for k, v in text_headers(message["headers"]):
                    if k.lower() == "set-cookie" and v.partition("=")[0].strip(" \t") in names:
                        self.emit("websocket_cookie_dropped")
                        continue
                    if k.lower() in ("fixguard-event", "fixguard-subject"):
                        continue
                    kept.append((k, v))
                message = {**message, "headers": byte_headers(kept)}
            await send(message)

        return guarded_send

    async def refuse(self, answer: Answer, receive: Receive, send: Send) -> None:
        """Before accept: a 403 with the refusal's body if the server can send one, else a close."""
        message = await receive()
        if message.get("type") != "websocket.connect":
            return  # the client left before its handshake was read
        status, headers, body = answer
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            code = int(status[:3])
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": code if code >= 500 else _WS_REFUSED,
                    "headers": byte_headers(headers),
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})
