"""Credential detection reads request bodies: the app must see them exactly as sent.

Every way an app or a framework reads ``wsgi.input`` gets the same bytes and
the same ``CONTENT_LENGTH`` as without fixguard: werkzeug's, Django's and
WebOb's form parsers, raw ``read(n)`` loops, ``readline`` and iteration; bodies
at and over ``max_detect_body``; bodies without a length (chunked, with
``wsgi.input_terminated``); multipart uploads. Hypothesis then throws bodies,
content types and headers at it: never a 5xx, the body never changed.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixguard import FixGuard

from .apps import SECRET

FORM = "application/x-www-form-urlencoded"
LIMIT = 512


class Trickle(io.RawIOBase):
    """A raw stream that hands out at most ``step`` bytes per read, as sockets do."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        super().__init__()
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.step, len(self.data))
        buffer[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def run(reader: Callable[[dict[str, Any]], Any], body: bytes, content_type: str, *,
        length: bool = True, guarded: bool = True, **options: Any) -> tuple[Any, str, list[str]]:  # fmt: skip
    """Call a WSGI app that reads its input with ``reader``; what it read, the status, the events."""
    seen: dict[str, Any] = {}
    events: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["read"] = reader(environ)
        start_response("200 OK", [("Set-Cookie", "session=s; Path=/")])
        return [b"ok"]

    wsgi: Any = app
    if guarded:
        wsgi = FixGuard(app, secret_key=SECRET, secure=False, login=(), max_detect_body=LIMIT,
                        on_event=lambda e: events.append(e.kind), **options)  # fmt: skip
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/submit",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BufferedReader(Trickle(body)),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": content_type,
    }
    if length:
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    status: list[str] = []
    for _ in wsgi(environ, lambda s, h, e=None: status.append(s)):
        pass
    seen["status"] = status[0]
    return seen, status[0], events


def raw_loop(environ: dict[str, Any]) -> bytes:
    stream, out = environ["wsgi.input"], b""
    left = int(environ.get("CONTENT_LENGTH") or 1 << 30)
    while left > 0:
        chunk = stream.read(min(5, left))
        if not chunk:
            break
        out += chunk
        left -= len(chunk)
    return out


def lines(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    first = stream.readline()
    return first + b"".join(stream)


def werkzeug_form(environ: dict[str, Any]) -> Any:
    from werkzeug.wrappers import Request

    request = Request(environ)
    return sorted(request.form.items(multi=True)), sorted((k, f.read()) for k, f in request.files.items())


def webob_form(environ: dict[str, Any]) -> Any:
    from webob import Request

    request = Request(environ)
    return sorted((k, v if isinstance(v, str) else v.value) for k, v in request.POST.items())


def django_form(environ: dict[str, Any]) -> Any:
    from .frameworks import django_app

    django_app.create_app()  # configures Django once
    from django.core.handlers.wsgi import WSGIRequest

    request = WSGIRequest(environ)
    return sorted(request.POST.lists()), sorted((k, f.read()) for k, f in request.FILES.items())


READERS = {"raw-read-loop": raw_loop, "readline-and-iteration": lines, "werkzeug": werkzeug_form,
           "webob": webob_form, "django": django_form}  # fmt: skip

MULTIPART = "multipart/form-data; boundary=XyZ"


def multipart(*parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--XyZ\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + b"--XyZ--\r\n"


BODIES = {
    "form-login": (b"username=alice&password=p%40ss+w&next=%2Fhome", FORM, True),
    "form-at-limit": (b"password=x&pad=" + b"a" * (LIMIT - 15), FORM, True),
    "form-over-limit": (b"password=x&pad=" + b"a" * LIMIT, FORM, False),
    "multipart-with-file": (
        multipart(("username", b"alice", None), ("password", b"x", None), ("cv", bytes(range(40)), "cv.bin")),
        MULTIPART,
        True,
    ),
    "multipart-upload-only": (multipart(("file", b"\x00\xff" * 50, "a.bin")), MULTIPART, False),
    "not-a-login": (b"q=search+terms&page=2", FORM, False),
}


# Django's WSGIRequest reads no body without CONTENT_LENGTH, guarded or not: no chunked case for it.
CASES = [
    pytest.param(reader, body, length, id=f"{reader}-{body}-{'content-length' if length else 'chunked'}")
    for reader in READERS
    for body in BODIES
    for length in (True, False)
    if length or reader != "django"
]


@pytest.mark.parametrize(("reader_name", "body_name", "length"), CASES)
def test_the_app_reads_the_body_exactly_as_sent(reader_name: str, body_name: str, length: bool) -> None:
    body, content_type, is_login = BODIES[body_name]
    reader = READERS[reader_name]
    bare, _, _ = run(reader, body, content_type, length=length, guarded=False)
    seen, status, events = run(reader, body, content_type, length=length)
    assert status == "200 OK"
    assert seen == bare  # the same bytes, the same parse, the same CONTENT_LENGTH
    if reader_name in ("raw-read-loop", "readline-and-iteration"):
        assert seen["read"] == body
    assert ("rotation" in events) is is_login


def test_without_a_length_or_end_marker_nothing_is_read() -> None:
    """No CONTENT_LENGTH and no wsgi.input_terminated: reading could block; the body is left alone."""
    body = b"password=x"
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["input"] = environ["wsgi.input"]
        start_response("200 OK", [])
        return [b""]

    stream = io.BytesIO(body)
    guarded = FixGuard(app, secret_key=SECRET, secure=False, login=())
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_TYPE": FORM, "wsgi.input": stream,
               "wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "80"}  # fmt: skip
    list(guarded(environ, lambda *a: None))
    assert seen["input"] is stream and stream.tell() == 0


def _form_body(fields: dict[str, str]) -> bytes:
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode()


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
BODY_STRATEGY = st.one_of(
    st.binary(max_size=400),
    st.builds(_form_body, st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=8)),
    JSON_DOCS.map(lambda doc: json.dumps(doc).encode()),
)
CONTENT_TYPES = st.sampled_from(
    [
        FORM,
        "application/json",
        "application/ld+json",
        MULTIPART,
        "multipart/form-data",
        "text/plain",
        "application/json; charset=latin-1",
        "APPLICATION/JSON",
        "",
    ]
)
AUTHORIZATION = st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=30).map(_basic))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODY_STRATEGY, content_type=CONTENT_TYPES, length=st.booleans(), authorization=AUTHORIZATION)
def test_hostile_bodies_and_headers_never_5xx_and_never_change_the_body(
    body: bytes, content_type: str, length: bool, authorization: str | None
) -> None:
    def reader(environ: dict[str, Any]) -> Any:
        return environ["wsgi.input"].read(), environ.get("CONTENT_LENGTH")

    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["read"] = reader(environ)
        start_response("200 OK", [("Set-Cookie", "session=s; Path=/")])
        return [b""]

    guarded = FixGuard(app, secret_key=SECRET, secure=False, login=(), max_detect_body=LIMIT)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BufferedReader(Trickle(body)),
        "CONTENT_TYPE": content_type,
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization.encode("utf-8", "surrogateescape").decode("latin-1")
    if length:
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        environ["wsgi.input_terminated"] = True
    status: list[str] = []
    list(guarded(environ, lambda s, h, e=None: status.append(s)))
    assert not status[0].startswith("5")
    assert seen["read"] == (body, str(len(body)) if length else None)
