"""The sans-I/O core on its own: request facts in, store operations and decisions out.

No server and no middleware here: an :class:`~fixguard.core.Exchange` is built
from a hand-written :class:`~fixguard.core.RequestFacts`, its steps are driven over
a real MemoryStore by a driver that also records every operation they yield.
What each kind of request asks of the store is the contract both shells rely
on (one GET for a read-only request, a freeze and one handover for a login).
"""

from __future__ import annotations

import ast
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from fixguard.core import Exchange, Guard, ReadBody, RequestFacts, Sleep, StoreCall, drive
from fixguard.core.ops import Steps
from fixguard.signals import ENVIRON_SIGNALS

KEY = secrets.token_urlsafe(48)
CORE = Path(__file__).resolve().parents[1] / "fixguard" / "core"
FOREIGN = ("redis", "werkzeug", "starlette", "uvicorn", "httpx", "webob", "flask", "django")
SHELLS = ("..wsgi", "..asgi", "..asgi_io", "..middleware")
DEFAULT_STORE = {("guard.py", "..stores.memory"), ("guard.py", "..stores.base")} | {
    (name, "..stores.base") for name in ("request.py", "response.py", "writes.py", "state.py", "exchange.py")
}


def make_guard(**options: Any) -> Guard:
    options.setdefault("secure", False)
    return Guard(None, secret_key=KEY, **options)


def request(method: str = "GET", path: str = "/", content_type: str | None = None) -> RequestFacts:
    context: dict[str, Any] = {}
    return RequestFacts(method, path, "", content_type, "http", "localhost", "127.0.0.1", context, context)


class Recorder:
    """Drives steps over the guard's store, keeping what they yielded."""

    def __init__(self, guard: Guard, body: bytes | None = None) -> None:
        self.guard = guard
        self.body = body
        self.ops: list[Any] = []

    def __call__(self, steps: Steps[Any]) -> Any:
        def recorded() -> Steps[Any]:
            value = None
            try:
                op = next(steps)
                while True:
                    self.ops.append(op)
                    value = yield op
                    op = steps.send(value)
            except StopIteration as stop:
                return stop.value

        return drive(recorded(), self.guard.store, lambda limit: self.body)

    def names(self) -> list[str]:
        return [op.name if isinstance(op, StoreCall) else type(op).__name__ for op in self.ops]


def live_id(guard: Guard) -> str:
    """A session holding one app cookie, created through the core."""
    ex = Exchange(guard, request())
    run = Recorder(guard)
    run(ex.prepare(None, None))
    out = run(ex.respond(200, [("Set-Cookie", "session=v1; Path=/")]))
    cookie = next(v for k, v in out if k == "Set-Cookie" and v.startswith("fixguard="))
    return str(cookie.split(";", 1)[0].split("=", 1)[1])


def test_the_core_imports_no_server_no_framework_and_no_store_client() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                assert name.lstrip(".").split(".")[0] not in FOREIGN, (path, name)
                assert name not in SHELLS, (path, name)
                # a store is only named by the configuration: MemoryStore, the default
                assert not name.startswith("..stores.") or (path.name, name) in DEFAULT_STORE, (path, name)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, fixguard.core; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # (the package's __init__ itself brings the WSGI shell: ``from fixguard import FixGuard``)
    for module in ("fixguard.asgi", "'redis'", "starlette"):
        assert module not in loaded, module


def test_no_cookie_asks_the_store_nothing() -> None:
    g = make_guard()
    ex, run = Exchange(g, request()), Recorder(g)
    prepared = run(ex.prepare(None, None))
    assert prepared.refusal is None and prepared.cookie is None
    assert run(ex.respond(200, [("Content-Type", "text/plain")])) == [("Content-Type", "text/plain")]
    assert run.ops == []


def test_a_read_only_request_is_one_get_and_sees_the_jar() -> None:
    g = make_guard()
    signed = live_id(g)
    ex, run = Exchange(g, request()), Recorder(g)
    prepared = run(ex.prepare(f"fixguard={signed}; session=forged", None))
    assert prepared.cookie == "session=v1"  # the jar's, never the client's copy
    assert ex.info().state == "live"
    headers = [("Content-Type", "text/plain")]
    assert run(ex.respond(200, headers)) is headers  # nothing to add, nothing copied
    assert run.names() == ["get"]


def test_a_login_freezes_first_then_hands_over_once() -> None:
    g = make_guard(login=("POST /login",), settle_time=0.01)
    signed = live_id(g)
    ex, run = Exchange(g, request("POST", "/login")), Recorder(g)
    run(ex.prepare(f"fixguard={signed}", None))
    run(ex.settle())
    out = run(ex.respond(200, [("Set-Cookie", "session=user; Path=/")]))
    assert run.names() == ["freeze", "Sleep", "handover"]
    assert isinstance(run.ops[1], Sleep) and run.ops[1].seconds == 0.01
    fresh = next(v for k, v in out if k == "Set-Cookie" and v.startswith("fixguard="))
    assert signed not in fresh
    again, run = Exchange(g, request()), Recorder(g)
    assert run(again.prepare(f"fixguard={signed}", None)).refusal[0].startswith("401")


def test_credentials_in_a_body_are_asked_for_and_make_a_login() -> None:
    g = make_guard(login=())
    signed = live_id(g)
    ex, run = Exchange(g, request("POST", "/signin", "application/json")), Recorder(g, b'{"password": "x"}')
    run(ex.prepare(f"fixguard={signed}", None))
    assert isinstance(run.ops[0], ReadBody) and run.ops[0].limit == g.settings.max_detect_body
    assert run.names()[1] == "freeze" and ex.rotating


def test_a_signal_in_the_context_rotates() -> None:
    g = make_guard(login=())
    signed = live_id(g)
    req = request("POST", "/welcome")
    ex, run = Exchange(g, req), Recorder(g)
    run(ex.prepare(f"fixguard={signed}", None))
    req.context[ENVIRON_SIGNALS] = ["login"]
    out = run(ex.respond(200, []))
    assert run.names() == ["get", "handover"] and any(k == "Set-Cookie" for k, _ in out)
