"""Helpers for the ASGI tests: a browser with its own cookie jar, a store per kind, an event loop per test.

:class:`Browser` sends requests through httpx's ASGI transport (in-process,
the app's real ASGI messages) and keeps cookies itself, by name, so a test can
plant one exactly as an attacker would. :func:`run` runs one async scenario on
a fresh event loop with a fresh store: a MemoryStore, or an AsyncRedisStore on
the suite's own redis-server under a prefix no other test uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from fixguard.stores.memory import MemoryStore

GUARD = "fixguard"  # fixguard's cookie name with secure=False


class Browser:
    """One client: a cookie jar by name, requests through the ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.bearer: str | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies and "cookie" not in {k.lower() for k in headers}:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.bearer and "authorization" not in {k.lower() for k in headers}:
            headers["authorization"] = f"Bearer {self.bearer}"
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(method, path, headers=headers, **kwargs)
        for line in response.headers.get_list("set-cookie"):
            pair = line.split(";", 1)[0]
            name, _, value = pair.partition("=")
            expired = "max-age=0" in line.lower().replace(" ", "") or "1970" in line
            if expired or not value:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)


def make_store(kind: str, redis_url: str = "", prefix: str = "") -> Any:
    if kind == "memory":
        return MemoryStore()
    from fixguard.stores.redis_async import AsyncRedisStore

    return AsyncRedisStore.from_url(redis_url, prefix=prefix)


def run(store_spec: tuple[str, str, str], scenario: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``scenario(store)`` on a fresh loop with a fresh store of the given kind."""

    async def main() -> None:
        store = make_store(*store_spec)
        try:
            await scenario(store)
        finally:
            if store_spec[0] != "memory":
                with contextlib.suppress(Exception):
                    await store.close()

    asyncio.run(main())
