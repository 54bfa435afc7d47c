"""One app, twice: as WSGI for gunicorn and as ASGI for uvicorn, for the end-to-end tests.

Both speak the same tiny protocol, with a ``session`` cookie signed by a key
every process shares (``E2E_MIXED_APP_KEY``), so the app itself needs no
shared state: whatever worker or server answers, the session is what
fixguard's store holds.

``GET /`` sets ``session`` to an anonymous value; ``POST /login`` to
``alice``; ``GET /whoami`` answers the user in the ``session`` cookie it
received (``anonymous`` without one); the WebSocket ``/ws`` (ASGI only)
accepts, sends the Cookie header of its handshake, and closes. Every HTTP
answer carries ``X-Worker-Pid`` (on uvicorn, fixguard's refusals too) and
``X-Server`` (``wsgi`` or ``asgi``).

Fixguard is configured from ``FIXGUARD_*`` variables (``from_env``): the
test gives both servers the same key, Redis URL and prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any

from fixguard import FixGuard
from fixguard.asgi import FixGuardMiddleware

SETTINGS = {"app_cookies": ("session",), "login": ("POST /login",), "logout": ("POST /logout",)}


def sign(user: str) -> str:
    key = os.environ["E2E_MIXED_APP_KEY"].encode()
    return user + "." + hmac.new(key, user.encode(), hashlib.sha256).hexdigest()[:32]


def user_in(cookie_header: str) -> str:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session" and "." in value:
            user = value.rsplit(".", 1)[0]
            if hmac.compare_digest(sign(user), value):
                return user
    return "anonymous"


def answer(method: str, path: str, cookie: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The app's whole logic, shared by both servers."""
    headers = [("Content-Type", "text/plain"), ("X-Worker-Pid", str(os.getpid()))]
    if path == "/" and method == "GET":
        headers.append(("Set-Cookie", f"session={sign('anon-' + os.urandom(4).hex())}; Path=/"))
        return 200, headers, b"hello"
    if path == "/login" and method == "POST":
        headers.append(("Set-Cookie", f"session={sign('alice')}; Path=/"))
        return 200, headers, b"welcome"
    if path == "/whoami":
        return 200, headers, user_in(cookie).encode()
    return 404, headers, b"not found"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status, headers, body = answer(
        environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_COOKIE", "")
    )
    start_response(f"{status} X", [*headers, ("X-Server", "wsgi")])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    cookie = b"; ".join(v for k, v in scope["headers"] if k == b"cookie").decode("latin-1")
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "cookie=" + cookie + ";pid=" + str(os.getpid())})
        await send({"type": "websocket.close", "code": 1000})
        return
    while (await receive()).get("more_body"):
        pass
    status, headers, body = answer(scope["method"], scope["path"], cookie)
    raw = [(k.lower().encode(), v.encode()) for k, v in [*headers, ("X-Server", "asgi")]]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def create_wsgi() -> FixGuard:
    return FixGuard.from_env(wsgi_app, **SETTINGS)


def create_asgi() -> Any:
    """The ASGI app behind FixGuardMiddleware, with ``X-Worker-Pid`` on fixguard's refusals too."""
    guarded = FixGuardMiddleware.from_env(asgi_app, **SETTINGS)
    pid = str(os.getpid()).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-worker-pid"]
                message = {**message, "headers": [*headers, (b"x-worker-pid", pid)]}
            await send(message)

        await guarded(scope, receive, tagged)

    return app
