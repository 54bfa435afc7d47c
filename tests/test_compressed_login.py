"""A compressed login response never hands the client the app's token.

Every browser and HTTP client sends ``Accept-Encoding: gzip``, and many apps
compress (Django's ``GZipMiddleware``, a WSGI gzip middleware, Flask-Compress).
fixguard keeps the app's tokens server-side by swapping them in the login
response, so it must read that response: a login or elevate request reaches
the app without ``Accept-Encoding``; a login response that arrives encoded
anyway is decoded within ``max_token_body`` and swapped, or refused with a
502 — never passed on with the app's token inside.

The attacker plays the bearer seed's attack for real: he chooses a token and
plants it in the victim's client; the app binds it to her at login and
echoes it back. Each test checks the body as sent *and* every decoding of it
(:func:`tests.compression.carries`), so no encoding can smuggle the token out.
"""

from __future__ import annotations

import gzip
import importlib
import json
import secrets
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder, TestResponse

from fixguard import Event, FixGuard
from fixguard.encoding import Undecodable, content_codings, decode, identity_headers

from .compression import Compress, carries, read

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is a folder of the checkout, not installed
    sys.path.insert(0, str(ROOT))

bearer_app = importlib.import_module("examples.bearer_app")

KEY = secrets.token_urlsafe(48)
ALICE = {"username": "alice", "password": "secret"}
ATTACKER_TOKEN = "attacker-chosen-token-0123456789"
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what a browser sends
MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    bearer_app.reset()
    yield
    bearer_app.reset()


@pytest.fixture
def events() -> list[Event]:
    return []


def token_guard(app: Callable[..., Iterable[bytes]], events: list[Event], **options: Any) -> FixGuard:
    """A guard that swaps ``access_token`` in login responses (rule: ``POST /login``)."""
    return FixGuard(app, secret_key=KEY, secure=False, token_fields=("access_token",), on_event=events.append,
                    **options)


def refusal(events: list[Event]) -> str:
    """Why the one ``token_body_refused`` event refused the body."""
    [refused] = [e for e in events if e.kind == "token_body_refused"]
    return str(refused.detail["reason"])


def cookie(client: Client) -> str:
    found = client.get_cookie("fixguard")
    assert found is not None
    return found.value


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Spy:
    """Between fixguard and the app: what ``Accept-Encoding`` the app stack received, per path."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.seen.append((environ["PATH_INFO"], environ.get("HTTP_ACCEPT_ENCODING")))
        return self.app(environ, start_response)

    def last(self, path: str) -> str | None:
        return [ae for p, ae in self.seen if p == path][-1]


def bearer_behind(events: list[Event], *, protected: bool = True, **compress: Any) -> tuple[Any, Spy]:
    """examples/bearer_app.py behind a compression middleware, then (if protected) fixguard."""
    app = bearer_app.create_app()
    spy = Spy(Compress(app.wsgi_app, **compress))
    app.wsgi_app = spy
    if protected:
        bearer_app.protect(app, secret_key=KEY, secure=False, on_event=events.append)
    return app, spy


def app_tokens() -> list[str]:
    """Every token the app has bound to a user (the attacker's chosen one included)."""
    return list(bearer_app.TOKENS)


def assert_no_app_token(res: TestResponse, tokens: Iterable[str]) -> None:
    for token in tokens:
        assert not carries(res.data, token), "the app's token left, in some encoding"


def login(client: Client, headers: dict[str, str]) -> TestResponse:
    return client.post("/login", json=ALICE, headers=headers)


# -- a WSGI gzip middleware that honours Accept-Encoding ------------------------------------


def test_bare_app_behind_gzip_compresses_its_login_and_echoes_the_planted_token() -> None:
    """The setup works: without fixguard the login is gzip and carries the attacker's token."""
    app, _ = bearer_behind([], protected=False)
    res = login(Client(app), {**BROWSER, **auth(ATTACKER_TOKEN)})
    assert res.headers["Content-Encoding"] == "gzip"
    assert ATTACKER_TOKEN.encode() not in res.data  # compressed: not visible as is
    assert carries(res.data, ATTACKER_TOKEN)
    assert bearer_app.TOKENS[ATTACKER_TOKEN]["user"] == "alice"


def test_login_behind_wsgi_gzip_never_hands_out_the_apps_token(events: list[Event]) -> None:
    app, spy = bearer_behind(events)
    victim, attacker = Client(app), Client(app)
    res = login(victim, {**BROWSER, **auth(ATTACKER_TOKEN)})
    assert res.status_code == 200
    assert_no_app_token(res, app_tokens())
    assert spy.last("/login") is None  # the login reached the app without Accept-Encoding
    assert "Content-Encoding" not in res.headers
    mine = res.get_json()["access_token"]
    assert mine.startswith("fgt_")
    assert victim.get("/me", headers={**BROWSER, **auth(mine)}).status_code == 200
    assert attacker.get("/me", headers=auth(ATTACKER_TOKEN)).status_code == 401
    # Elsewhere the app still compresses: only the requests that may rotate lose the header.
    page = victim.get("/me", headers={**BROWSER, **auth(mine)})
    assert spy.last("/me") == BROWSER["Accept-Encoding"]
    assert page.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(page.data))["user"] == "alice"


def test_elevate_behind_wsgi_gzip_never_hands_out_the_apps_token(events: list[Event]) -> None:
    app, spy = bearer_behind(events)
    victim = Client(app)
    mine = login(victim, BROWSER).get_json()["access_token"]
    up = victim.post("/elevate", json={"code": bearer_app.MFA_CODE}, headers={**BROWSER, **auth(mine)})
    assert spy.last("/elevate") is None
    assert_no_app_token(up, app_tokens())
    elevated = up.get_json()["access_token"]
    assert elevated.startswith("fgt_") and elevated != mine
    assert victim.get("/me", headers=auth(elevated)).get_json()["mfa"] is True


def test_only_requests_that_may_rotate_on_a_token_guard_lose_accept_encoding() -> None:
    seen: dict[str, str | None] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen[environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"]] = environ.get("HTTP_ACCEPT_ENCODING")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    rules = {"login": ("POST /login",), "elevate": ("POST /mfa",), "logout": ("POST /logout",)}
    client = Client(FixGuard(app, secret_key=KEY, secure=False, token_fields=("access_token",), **rules))
    for method, path in (("POST", "/login"), ("POST", "/mfa"), ("POST", "/logout"), ("GET", "/page")):
        client.open(path, method=method, headers={"Accept-Encoding": "gzip"})
    assert seen == {"POST /login": None, "POST /mfa": None, "POST /logout": "gzip", "GET /page": "gzip"}
    # Without token_fields nothing in the body is swapped: the header stays.
    seen.clear()
    plain = FixGuard(app, secret_key=KEY, secure=False, **rules)
    Client(plain).post("/login", headers={"Accept-Encoding": "gzip"})
    assert seen == {"POST /login": "gzip"}


# -- Django's GZipMiddleware -----------------------------------------------------------------


@pytest.fixture
def django_api() -> Iterator[Callable[[], Any]]:
    """A fresh Django WSGI handler for ``django_api_urls``, behind GZipMiddleware only."""
    from django.test import override_settings

    from .frameworks import django_api_urls, django_app

    django_app._setup()  # the process-wide configuration of the framework matrix
    from django.core.wsgi import get_wsgi_application

    with override_settings(
        ROOT_URLCONF="tests.frameworks.django_api_urls", MIDDLEWARE=["django.middleware.gzip.GZipMiddleware"]
    ):
        yield get_wsgi_application
    django_api_urls.TOKENS.clear()


def django_login(client: Client, headers: dict[str, str]) -> TestResponse:
    from .frameworks import ALICE_PASSWORD

    return client.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD}, headers=headers)


def test_bare_django_gzips_its_login_and_echoes_the_planted_token(django_api: Callable[[], Any]) -> None:
    res = django_login(Client(django_api()), {**BROWSER, **auth(ATTACKER_TOKEN)})
    assert res.headers["Content-Encoding"] == "gzip"
    assert ATTACKER_TOKEN.encode() not in res.data and carries(res.data, ATTACKER_TOKEN)


def test_login_behind_django_gzip_middleware_never_hands_out_the_apps_token(
    django_api: Callable[[], Any], events: list[Event]
) -> None:
    from .frameworks import django_api_urls

    guard = FixGuard(django_api(), secret_key=KEY, secure=False, login=("POST /api/login",),
                     token_fields=("access_token",), on_event=events.append)
    victim, attacker = Client(guard), Client(guard)
    res = django_login(victim, {**BROWSER, **auth(ATTACKER_TOKEN)})
    assert list(django_api_urls.TOKENS.values()) == ["alice"]  # the app did answer with a token
    assert_no_app_token(res, django_api_urls.TOKENS)
    mine = json.loads(res.data)["access_token"]
    assert mine.startswith("fgt_")
    assert victim.get("/api/me", headers={**BROWSER, **auth(mine)}).status_code == 200
    assert attacker.get("/api/me", headers=auth(ATTACKER_TOKEN)).status_code == 401


# -- an app that compresses whatever the client asked ----------------------------------------


@pytest.mark.parametrize(
    ("coding", "options"),
    [
        ("gzip", {}),
        ("x-gzip", {}),
        ("deflate", {}),
        ("deflate", {"raw_deflate": True}),
        ("gzip", {"members": 3}),
        ("gzip, deflate", {}),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-members", "gzip-then-deflate"],
)
def test_login_compressed_regardless_is_decoded_swapped_and_sent_as_identity(
    coding: str, options: dict[str, Any], events: list[Event]
) -> None:
    app, _ = bearer_behind(events, coding=coding, always=True, **options)
    victim = Client(app)
    res = login(victim, auth(ATTACKER_TOKEN))  # no Accept-Encoding at all: the app compresses anyway
    assert res.status_code == 200
    assert_no_app_token(res, app_tokens())
    assert "Content-Encoding" not in res.headers
    assert int(res.headers["Content-Length"]) == len(res.data)
    assert "Accept-Encoding" in ", ".join(res.headers.getlist("Vary"))  # the app's own Vary, kept
    mine = res.get_json()["access_token"]
    assert mine.startswith("fgt_")
    page = victim.get("/me", headers=auth(mine))
    assert json.loads(read(page.data, page.headers.get("Content-Encoding")))["user"] == "alice"


def test_login_signalled_by_the_response_arrives_compressed_and_is_still_swapped(events: list[Event]) -> None:
    """A login fixguard learns of only from the answer cannot be stripped first: it is decoded."""
    seen: list[str | None] = []
    tokens: dict[str, str] = {}

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ.get("HTTP_ACCEPT_ENCODING"))
        if environ["PATH_INFO"] == "/signin":
            token = secrets.token_urlsafe(32)
            tokens[token] = "alice"
            body = json.dumps({"access_token": token, "profile": {"name": "Alice"}}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("200 OK", [*headers, ("Fixguard-Event", "login")])
            return [body]
        words = environ.get("HTTP_AUTHORIZATION", "").split()
        user = tokens.get(words[-1]) if len(words) == 2 else None
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"user={user}".encode()]

    guard = token_guard(Compress(api), events, login=())
    client = Client(guard)
    res = client.post("/signin", headers=BROWSER)
    assert seen[-1] == BROWSER["Accept-Encoding"]  # not a rule: the app saw it, and compressed
    assert_no_app_token(res, tokens)
    assert "Content-Encoding" not in res.headers
    mine = res.get_json()["access_token"]
    assert mine.startswith("fgt_")
    assert gzip.decompress(client.get("/me", headers={**BROWSER, **auth(mine)}).data) == b"user=alice"
    assert "rotation" in kinds(events)


# -- what fixguard cannot decode is refused ----------------------------------------------------


def encoded_api(encoding: str, encode: Callable[[bytes], bytes]) -> tuple[Callable[..., Any], dict[str, str]]:
    """An app whose login answers a token body, encoded as given; ``GET /`` starts a session."""
    tokens: dict[str, str] = {}

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            token = secrets.token_urlsafe(32)
            tokens[token] = "alice"
            body = encode(json.dumps({"access_token": token}).encode())
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", encoding),
                                      ("Content-Length", str(len(body))), ("Set-Cookie", "session=s1")])
            return [body]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "session=s0")])
        return [b"home"]

    return api, tokens


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "encode", "reason"),
    [
        ("br", lambda body: body, "unsupported content coding 'br'"),
        ("zstd", lambda body: body, "unsupported content coding 'zstd'"),
        ("gzip", lambda body: body, "malformed gzip stream"),
        ("gzip", lambda body: gzip.compress(body)[:-6], "truncated gzip stream"),
        ("gzip", lambda body: gzip.compress(body) + b"\x00\x00junk", "gzip stream"),
        ("deflate", lambda body: zlib.compress(body) + b"junk", "bytes after the end of the deflate stream"),
        ("deflate", lambda body: _raw_deflate(body)[:-2], "deflate stream"),
        ("gzip, br", lambda body: gzip.compress(body), "unsupported content coding 'br'"),
    ],
    ids=["br", "zstd", "plain-as-gzip", "truncated-gzip", "gzip-then-junk", "deflate-then-junk",
         "truncated-raw-deflate", "gzip-then-br"],
)
def test_login_body_fixguard_cannot_decode_is_refused(
    encoding: str, encode: Callable[[bytes], bytes], reason: str, events: list[Event]
) -> None:
    api, tokens = encoded_api(encoding, encode)
    guard = token_guard(api, events)
    client = Client(guard)
    client.get("/")
    planted = cookie(client)
    res = client.post("/login")
    assert res.status_code == 502
    assert tokens, "the app did answer with a token"
    assert_no_app_token(res, tokens)
    assert "Content-Encoding" not in res.headers
    assert reason in refusal(events)
    # The app logged someone in all the same: the pre-login ID is dead, as after any login,
    # and the client starts over with no session.
    assert "rotation" in kinds(events)
    assert client.get_cookie("fixguard") is None
    replay = Client(guard)
    replay.set_cookie("fixguard", planted)
    assert replay.get("/").status_code == 401


def test_encoded_body_larger_than_max_token_body_is_refused(events: list[Event]) -> None:
    api, tokens = encoded_api("gzip", lambda body: gzip.compress(body, compresslevel=0))
    guard = token_guard(api, events, max_token_body=32)
    res = Client(guard).post("/login")
    assert res.status_code == 502
    assert_no_app_token(res, tokens)
    assert "larger than max_token_body" in refusal(events)


def test_encoded_login_without_a_token_passes_as_the_app_sent_it(events: list[Event]) -> None:
    """Nothing to swap: the app's compressed bytes leave untouched, with their own headers."""
    body = gzip.compress(json.dumps({"status": "welcome", "profile": {"name": "Alice"}}).encode())

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    res = Client(token_guard(api, events)).post("/login")
    assert res.data == body and res.headers["Content-Encoding"] == "gzip"


def test_encoded_non_json_login_is_treated_like_an_unencoded_one(events: list[Event]) -> None:
    """A body that is not JSON passes untouched with an event, encoded or not (see the README)."""
    api, _ = encoded_api("gzip", gzip.compress)

    def html(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def as_html(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, "text/html" if k == "Content-Type" else v) for k, v in headers]
            return start_response(status, headers, exc_info)

        return api(environ, as_html)

    guard = token_guard(html, events)
    res = Client(guard).post("/login")
    assert res.status_code == 200 and res.headers["Content-Encoding"] == "gzip"
    assert "token_body_skipped" in kinds(events)


# -- decompression bombs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A JSON login body of 256 MiB, gzip-compressed to about a quarter of a MiB."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [squeeze.compress(b'{"access_token": "app-token-in-a-bomb", "pad": "')]
    zeros = b"0" * MiB
    parts += [squeeze.compress(zeros) for _ in range(256)]
    parts.append(squeeze.compress(b'"}') + squeeze.flush())
    return b"".join(parts)


def test_decompression_bomb_is_refused_in_bounded_memory_and_time(bomb: bytes, events: list[Event]) -> None:
    assert len(bomb) < MiB  # it fits under max_token_body as sent: only decoding reveals it

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        for i in range(0, len(bomb), 16384):  # streamed, as a server would send it
            yield bomb[i : i + 16384]

    guard = token_guard(api, events)
    environ = EnvironBuilder(path="/login", method="POST", headers=BROWSER).get_environ()
    status: list[str] = []
    tracemalloc.start()
    started = time.perf_counter()
    try:
        app_iter = guard(environ, lambda s, h, exc_info=None: status.append(s))
        body = b"".join(app_iter)
        getattr(app_iter, "close", lambda: None)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    took = time.perf_counter() - started
    assert status == ["502 Bad Gateway"]
    assert b"app-token-in-a-bomb" not in body
    assert "larger than max_token_body" in refusal(events)
    assert peak < 8 * MiB, f"decoding a 256 MiB bomb used {peak / MiB:.0f} MiB"
    assert took < 5


def test_decoder_never_produces_more_than_its_limit(bomb: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(Undecodable, match="larger than max_token_body"):
            decode(bomb, ("gzip",), MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


def test_decoder_bounds_every_stage_of_stacked_codings(bomb: bytes) -> None:
    """A bomb inside a small deflate wrapper is caught at the inner stage, not after it."""
    with pytest.raises(Undecodable, match="larger than max_token_body"):
        decode(zlib.compress(bomb), ("gzip", "deflate"), MiB)


def test_decoder_copes_with_a_flood_of_empty_gzip_members() -> None:
    """Tens of thousands of members cost one pass, not one copy of the rest per member."""
    member = gzip.compress(b"", mtime=0)
    flood = member * (MiB // len(member))
    started = time.perf_counter()
    assert decode(flood, ("gzip",), MiB) == b""
    assert time.perf_counter() - started < 2


def test_content_codings_and_identity_headers() -> None:
    headers = [("Content-Encoding", "gzip, identity"), ("content-encoding", "X-GZIP")]
    headers += [("Content-Length", "9"), ("Vary", "Accept-Encoding")]
    assert content_codings(headers) == ("gzip", "gzip")
    assert content_codings([("Content-Encoding", "identity")]) == ()
    assert identity_headers(headers, 42) == [("Vary", "Accept-Encoding"), ("Content-Length", "42")]
