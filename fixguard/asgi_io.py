"""ASGI plumbing for :mod:`fixguard.asgi`: the async driver, headers, the request as facts, the body.

Nothing here decides anything about sessions: it turns a scope into the
core's :class:`~fixguard.core.state.Request` and back into headers, and reads
a request body for credential detection so that the app is then given
exactly the same ``http.request`` messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from .core.state import Headers, Request, RequestFacts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def text_headers(raw: Any) -> Headers:
    """ASGI's byte-string header pairs as text (latin-1, as HTTP/1.1 carries them)."""
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw]


def byte_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def header(raw: Any, name: bytes) -> str | None:
    """One request header's value (several Cookie headers are joined with ``; ``)."""
    found = [bytes(v).decode("latin-1") for k, v in raw if bytes(k).lower() == name]
    if not found:
        return None
    return "; ".join(found) if name == b"cookie" else found[0]


def read_request(scope: Scope, method: str) -> tuple[Request, str | None, str | None]:
    """The core's view of an ASGI request, and its Cookie and Authorization headers (one pass).

    ``path`` is without the ``root_path`` the app is mounted at, like WSGI's
    ``PATH_INFO``. Several Cookie headers (HTTP/2) are joined with ``; ``.
    """
    cookies: list[str] = []
    authorization = content_type = host = None
    for k, v in scope.get("headers") or ():
        name = bytes(k).lower()
        if name == b"cookie":
            cookies.append(bytes(v).decode("latin-1"))
        elif name == b"authorization":
            if authorization is None:
                authorization = bytes(v).decode("latin-1")
        elif name == b"content-type":
            content_type = bytes(v).decode("latin-1")
        elif name == b"host":
            host = bytes(v).decode("latin-1")
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    client = scope.get("client")
    request = RequestFacts(
        method=method,
        path=path,
        script_name=root,
        content_type=content_type,
        scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
        host=host or str((scope.get("server") or ("",))[0] or ""),
        remote_addr=str(client[0]) if client else "",
        context=scope,
        view=ScopeView(scope, method),
    )
    return request, "; ".join(cookies) if cookies else None, authorization


class ScopeView(Mapping[str, Any]):
    """An ASGI scope read like a WSGI environ, for ``on_reject`` and content negotiation.

    ``HTTP_ACCEPT``, ``REQUEST_METHOD``, ``PATH_INFO``, ``QUERY_STRING``,
    ``SCRIPT_NAME``, ``REMOTE_ADDR``; the scope itself is ``asgi.scope``.
    Computed when asked, so a request that is never refused pays nothing.
    """

    def __init__(self, scope: Scope, method: str) -> None:
        self.scope = scope
        self.method = method

    def _items(self) -> dict[str, Any]:
        scope = self.scope
        out: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            "PATH_INFO": scope.get("path") or "/",
            "SCRIPT_NAME": scope.get("root_path") or "",
            "QUERY_STRING": bytes(scope.get("query_string") or b"").decode("latin-1"),
            "REMOTE_ADDR": str(scope["client"][0]) if scope.get("client") else "",
            "asgi.scope": scope,
        }
        for name, value in text_headers(scope.get("headers") or ()):
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                key = key[5:]
            out[key] = out[key] + "," + value if key in out else value
        return out

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())


def app_headers(raw: Any, cookie: str | None, authorization: str | None, drop_encoding: bool) -> list[Any]:
    """The request headers the app sees: fixguard's Cookie, Authorization as decided."""
    out: list[Any] = []
    for k, v in raw:
        name = bytes(k).lower()
        if name == b"cookie":
            continue
        if name == b"authorization" and authorization is not None:
            continue
        if name == b"accept-encoding" and drop_encoding:
            continue
        out.append((k, v))
    if cookie is not None:
        out.append((b"cookie", cookie.encode("latin-1")))
    if authorization:
        out.append((b"authorization", authorization.encode("latin-1")))
    return out


class BodyReader:
    """Reads a request body for inspection, bounded, and replays the very same messages.

    With a ``Content-Length`` over the limit, nothing is read (as in WSGI);
    otherwise messages are taken until the body ends or passes the limit.
    Either way the app's ``receive`` gives it every message read, in order,
    then the server's own.
    """

    def __init__(self, receive: Receive, scope: Scope) -> None:
        self.server_receive = receive
        self.scope = scope
        self.buffered: list[Message] = []

    async def read(self, limit: int) -> bytes | None:
        length = header(self.scope.get("headers") or (), b"content-length")
        if length is not None:
            try:
                if int(length) > limit or int(length) < 0:
                    return None
            except ValueError:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.server_receive()
            self.buffered.append(message)
            if message.get("type") != "http.request":
                return None  # the client left: nothing to inspect
            chunk = bytes(message.get("body") or b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def receive(self) -> Message:
        if self.buffered:
            return self.buffered.pop(0)
        return await self.server_receive()
