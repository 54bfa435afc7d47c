"""The ASGI act of ``fixguard demo``: the signed-cookie attack on a Starlette app, bare then protected.

``examples/asgi_app.py`` is a Starlette app whose login echoes the HMAC-signed
``sid`` cookie the client arrived with. The attacker gets a cookie, plants it
in the victim's browser, the victim logs in, the attacker replays it: bare,
he is the victim; behind :class:`~fixguard.asgi.FixGuardMiddleware`, the
replay is refused. The apps are called in-process with ASGI messages (no
socket, no HTTP client). Needs Starlette and python-multipart (the ``asgi``
extra); without them the act is skipped and says how to get it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import secrets
from collections.abc import Callable
from typing import Any

_VICTIM_FORM = b"username=alice&password=secret"
_SHOWN = 8


async def _request(
    app: Any, method: str, path: str, cookies: dict[str, str], body: bytes = b""
) -> tuple[int, str]:
    """One request to an ASGI app; its status and text, and the cookies it set go into ``cookies``."""
    headers = [(b"host", b"localhost")]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("latin-1")))
    if body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("localhost", 443),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status, chunks = 500, []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                if key.lower() == b"set-cookie":
                    name, _, rest = value.decode("latin-1").partition("=")
                    cookies[name.strip()] = rest.split(";", 1)[0]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, b"".join(chunks).decode("utf-8", "replace").strip()


async def _attack(app: Any, say: Callable[[str], None], protected: bool) -> str:
    attacker: dict[str, str] = {}
    await _request(app, "GET", "/", attacker)
    shown = ", ".join(f"{n}={v[:_SHOWN]}…" for n, v in attacker.items()) or "no cookie at all"
    say(f"  1. attacker GET /           -> his browser holds {shown}")
    if protected and "sid" not in attacker:
        say("     (the app's own 'sid' cookie stayed on the server)")
    victim = dict(attacker)
    say("  2. attacker plants it in the victim's browser")
    status, _ = await _request(app, "POST", "/login", victim, _VICTIM_FORM)
    fresh = all(victim.get(n) != v for n, v in attacker.items())
    holds = "a fresh ID" if fresh else "the planted ID"
    say(f"  3. victim logs in as alice: POST /login -> {status}; her browser holds {holds}")
    own_status, own = await _request(app, "GET", "/profile", victim)
    replay_status, replay = await _request(app, "GET", "/profile", dict(attacker))
    say(f"  4. attacker replays {shown}: GET /profile -> {replay_status} {replay[:50]!r}")
    if replay_status == 200 and "alice" in replay:
        say("  => EXPLOITED: the attacker is logged in as alice")
        return "exploited"
    if own_status != 200 or "alice" not in own:
        say("  => BROKEN: the attacker got nothing, but neither did alice")
        return "broken"
    say("  => BLOCKED: the planted ID died at login; alice is still logged in")
    return "blocked"


def play(say: Callable[[str], None]) -> list[tuple[str, str, str]] | None:
    """Both runs against ``examples/asgi_app.py``; None (with a note) when Starlette is missing."""
    missing = [m for m in ("starlette", "multipart", "jwt") if importlib.util.find_spec(m) is None]
    if missing:
        say("\n== examples/asgi_app.py: skipped (the ASGI example needs pip install -e '.[asgi]')")
        return None
    module = importlib.import_module("examples.asgi_app")
    say("\n== examples/asgi_app.py (Starlette, ASGI): an HMAC-signed sid cookie that the login echoes back")
    results = []
    for protected in (False, True):
        say("-- behind FixGuardMiddleware" if protected else "-- bare")
        module.reset()
        app = module.create_app()
        if protected:
            app = module.protect(app, secret_key=secrets.token_urlsafe(48))
        try:
            outcome = asyncio.run(_attack(app, say, protected))
        except Exception as exc:
            say(f"  => ERROR: {type(exc).__name__}: {exc}")
            outcome = "error"
        results.append(("asgi_app", "bare" if not protected else "protected", outcome))
    module.reset()
    return results
