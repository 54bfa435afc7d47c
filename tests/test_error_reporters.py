"""Error reporters that capture frame locals find no session secret when an app exception passes.

Sentry (by default), Rollbar and others record the local variables of every
frame an exception unwinds through, serialising each with ``repr()`` and
walking into containers. When an app raises, those frames include
fixguard's own. The reporter here is stricter than any of them: for every
frame of the traceback it takes each local's ``repr()`` and walks on, a few
levels deep, into containers, into ``vars()`` of objects and into bound
methods' ``__self__``. None of it may show fixguard's cookie value, a
signed or raw ID, the key a session is stored under, a fixguard token, a
foreign bearer token fixguard kept from the app, or the secret key.

Two things are not walked. The session store: it is the session database,
built so that a dump of it is harmless (records are keyed by a keyed hash,
never by an ID); a reporter that serialised it would hold the store, not a
request's secrets. And the server's ``start_response`` (a plain function
here): the server holds the headers it was given to send, fixguard's
Set-Cookie among them, and that memory is the server's.
"""

from __future__ import annotations

import secrets
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from fixguard import FixGuard
from fixguard.stores.base import Store

KEY = secrets.token_urlsafe(48)
DEPTH = 5
APP_SESSION = "app-session-" + secrets.token_hex(8)  # the app's own cookie value: the app may see it


class Boom(Exception):
    """What the app raises."""


def reachable_text(tb: types.TracebackType | None) -> list[str]:
    """``repr()`` of everything reachable from the locals of the traceback's frames (the first excluded)."""
    texts: list[str] = []
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> None:
        if id(obj) in seen or isinstance(obj, types.ModuleType | type | types.FunctionType | Store):
            return
        seen.add(id(obj))
        try:
            texts.append(repr(obj))
        except Exception:  # a reporter skips what it cannot print
            texts.append("<unprintable>")
        if depth == 0 or isinstance(obj, str | bytes | int | float | bool | types.NoneType):
            return
        if isinstance(obj, Mapping):
            for key, value in list(obj.items()):
                walk(key, depth - 1)
                walk(value, depth - 1)
        elif isinstance(obj, list | tuple | set | frozenset):
            for item in list(obj):
                walk(item, depth - 1)
        if isinstance(obj, types.MethodType):
            walk(obj.__self__, depth - 1)
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            for value in list(attributes.values()):
                walk(value, depth - 1)

    tb = tb.tb_next if tb is not None else None  # the test's own frame, which caught it
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            walk(value, DEPTH)
        tb = tb.tb_next
    return texts


def assert_hidden(texts: list[str], secrets_: Mapping[str, str]) -> None:
    for what, secret in secrets_.items():
        assert secret, what
        found = [t[:200] for t in texts if secret in t]
        assert not found, f"{what} is reachable from the traceback: {found[:3]}"


class Server:
    """Calls the guard as a WSGI server does; remembers the headers of the last response."""

    def __init__(self, guard: FixGuard) -> None:
        self.guard = guard
        self.headers: list[tuple[str, str]] = []

    @property
    def start_response(self) -> Callable[..., Any]:
        """A fresh function per request, as servers give (the walk does not enter functions)."""
        headers = self.headers = []

        def start_response(status: str, given: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers[:] = given
            return lambda data: None

        return start_response

    def call(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> list[str]:
        """Run a request; its Set-Cookie values for fixguard's cookie."""
        environ = EnvironBuilder(path=path, method=method, headers=headers or {}).get_environ()
        app_iter = self.guard(environ, self.start_response)
        try:
            b"".join(app_iter)
        finally:
            getattr(app_iter, "close", lambda: None)()
        return self.fixguard_cookies()

    def fixguard_cookies(self) -> list[str]:
        return [v.split(";")[0].split("=", 1)[1] for k, v in self.headers
                if k.lower() == "set-cookie" and v.startswith("fixguard=") and v.split(";")[0] != "fixguard="]

    def fail(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> list[str]:
        """Run a request the app fails; the text a reporter could see."""
        environ = EnvironBuilder(path=path, method=method, headers=headers or {}).get_environ()
        with pytest.raises(Boom) as caught:
            app_iter = self.guard(environ, self.start_response)
            try:
                b"".join(app_iter)
            finally:
                getattr(app_iter, "close", lambda: None)()
        return reachable_text(caught.value.__traceback__)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Sets its own session cookie on ``/``; fails on ``/boom`` (before answering) and ``/stream``."""
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise Boom("the app failed before answering")
    headers = [("Content-Type", "application/json")]
    if path in ("/", "/stream", "/login") and "session=" not in environ.get("HTTP_COOKIE", ""):
        headers.append(("Set-Cookie", f"session={APP_SESSION}; Path=/"))
    if path == "/token-login":
        start_response("200 OK", headers)
        return [b'{"access_token": "app-token-', secrets.token_hex(8).encode(), b'"}']
    start_response("200 OK", headers)
    if path in ("/stream", "/login"):
        return failing_body(environ, start_response)
    return [b"{}"]


def failing_body(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """A streamed answer that fails half-way; like most, it still holds the request."""
    yield b"{"
    raise Boom(f"the app failed while streaming its answer to {environ['PATH_INFO']}")


def guard(**options: Any) -> FixGuard:
    return FixGuard(app, secret_key=KEY, secure=False, **options)


def id_secrets(g: FixGuard, signed: str, label: str) -> dict[str, str]:
    """Every form of one signed ID a reporter must not see."""
    vid = g.ids.verify(signed)
    assert vid is not None
    return {f"{label} cookie value": signed, f"{label} raw ID": vid.sid, f"{label} store key": vid.key}


def test_the_reporter_sees_the_apps_own_frames() -> None:
    """The walk is real: it reaches the app's environ (whose Cookie the app is meant to see)."""
    server = Server(guard())
    [signed] = server.call("/")
    texts = server.fail("/boom", headers={"Cookie": f"fixguard={signed}"})
    assert any(APP_SESSION in t for t in texts)
    assert any("fixguard.wsgi._Exchange object" in t for t in texts)  # it reaches fixguard's objects
    streamed = server.fail("/stream", headers={"Cookie": f"fixguard={signed}"})
    assert any(APP_SESSION in t for t in streamed)


def test_app_failing_before_it_answers() -> None:
    g = guard()
    server = Server(g)
    [signed] = server.call("/")
    raw_header = f"theme=dark; fixguard={signed}"
    texts = server.fail("/boom", headers={"Cookie": raw_header})
    hidden = {"raw Cookie header": raw_header, "secret key": KEY, **id_secrets(g, signed, "session")}
    assert_hidden(texts, hidden)


def test_app_failing_while_streaming_a_response_that_creates_a_session() -> None:
    g = guard()
    server = Server(g)
    texts = server.fail("/stream")
    [fresh] = server.fixguard_cookies()  # sent with the headers before the body failed
    assert_hidden(texts, id_secrets(g, fresh, "new session"))


def test_app_failing_while_streaming_a_login() -> None:
    g = guard(login=("POST /login",))
    server = Server(g)
    [before] = server.call("/")
    texts = server.fail("/login", method="POST", headers={"Cookie": f"fixguard={before}"})
    [after] = server.fixguard_cookies()
    assert after != before
    assert_hidden(texts, {**id_secrets(g, before, "pre-login"), **id_secrets(g, after, "post-login")})


def test_app_failing_on_a_renewed_id_within_its_grace() -> None:
    g = guard(login=("POST /signin",), renew_after=0.05, renew_grace=30)
    server = Server(g)
    [before] = server.call("/")
    [signed_in] = server.call("/signin", method="POST", headers={"Cookie": f"fixguard={before}"})
    time.sleep(0.1)
    [renewed] = server.call("/", headers={"Cookie": f"fixguard={signed_in}"})
    assert renewed != signed_in
    # The old ID, within its grace, stands for its successor; the reply would re-send the successor.
    texts = server.fail("/boom", headers={"Cookie": f"fixguard={signed_in}"})
    assert_hidden(texts, {**id_secrets(g, signed_in, "renewed"), **id_secrets(g, renewed, "successor")})


def test_app_failing_on_a_request_with_a_fixguard_token() -> None:
    g = guard(login=("POST /token-login",), token_fields=("access_token",))
    server = Server(g)
    environ = EnvironBuilder(path="/token-login", method="POST").get_environ()
    body = b"".join(g(environ, server.start_response))
    token = body.decode().split('"access_token":"')[1].split('"')[0]
    assert token.startswith("fgt_")
    [session_cookie] = server.fixguard_cookies()
    texts = server.fail("/boom", headers={"Authorization": f"Bearer {token}"})
    assert_hidden(texts, {"fixguard token": token.removeprefix("fgt_"),
                          **id_secrets(g, token.removeprefix("fgt_"), "token"),
                          **id_secrets(g, session_cookie, "session")})


def test_app_failing_on_a_login_that_carried_a_foreign_token() -> None:
    """A bearer token fixguard did not mint never reaches the app, nor a reporter."""
    g = guard(login=("POST /login",), token_fields=("access_token",))
    server = Server(g)
    foreign = "foreign-token-" + secrets.token_hex(16)
    texts = server.fail("/login", method="POST", headers={"Authorization": f"Bearer {foreign}"})
    assert_hidden(texts, {"foreign token": foreign})


class ClosingBadly:
    """A login answer whose ``close()`` fails, after fixguard has swapped its token and sent it."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.body = [b'{"access_token": "app-token-', secrets.token_hex(8).encode(), b'"}']

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        raise Boom(f"the app failed closing its answer to {self.environ['PATH_INFO']}")


def test_app_failing_to_close_a_token_login() -> None:
    def token_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Set-Cookie", "session=s1")])
        return ClosingBadly(environ)

    g = FixGuard(token_app, secret_key=KEY, secure=False, token_fields=("access_token",))
    server = Server(g)
    environ = EnvironBuilder(path="/login", method="POST").get_environ()
    app_iter = g(environ, server.start_response)
    body = b"".join(app_iter)
    with pytest.raises(Boom) as caught:
        app_iter.close()  # type: ignore[attr-defined]
    texts = reachable_text(caught.value.__traceback__)
    token = body.decode().split('"access_token":"')[1].split('"')[0].removeprefix("fgt_")
    [session_cookie] = server.fixguard_cookies()
    assert_hidden(texts, {**id_secrets(g, token, "token"), **id_secrets(g, session_cookie, "session")})


def test_app_failing_on_an_older_id_whose_session_moved_on() -> None:
    """An ID the session left by a write (a snapshot) leads to the newest one: neither shows."""

    def writer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise Boom("the app failed before answering")
        value = environ["PATH_INFO"].strip("/") or "v1"
        start_response("200 OK", [("Set-Cookie", f"session={value}; Path=/")])
        return [b"ok"]

    g = FixGuard(writer, secret_key=KEY, secure=False, renew_grace=30)
    server = Server(g)
    [older] = server.call("/")
    [newer] = server.call("/v2", headers={"Cookie": f"fixguard={older}"})  # a jar change: a new ID
    assert newer != older
    texts = server.fail("/boom", headers={"Cookie": f"fixguard={older}"})
    assert_hidden(texts, {**id_secrets(g, older, "older"), **id_secrets(g, newer, "newer")})
