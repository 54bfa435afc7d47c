"""A WSGI compression middleware, small but real, for the compressed-login tests.

It does what gzip middlewares do (Paste's ``gzipper``, the compression
inside Flask-Compress or Django's ``GZipMiddleware``): when the client's
``Accept-Encoding`` names the coding, it compresses the body as it streams,
drops ``Content-Length``, and sets ``Content-Encoding`` and ``Vary:
Accept-Encoding``. Responses that already carry a ``Content-Encoding`` and
bodiless statuses are left alone.

Written here rather than installed so the tests can also play the apps that
misbehave in ways a packaged middleware would not be configured to: one
that compresses whatever the client accepts (``always=True``), one that
sends raw deflate where RFC 9110 says zlib, one that sends several gzip
members, one that applies two codings.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Headers = list[tuple[str, str]]

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Compress:
    """Compress the wrapped app's responses.

    :param coding: ``gzip``, ``x-gzip``, ``deflate`` (zlib-wrapped), or
        ``gzip, deflate`` (two codings, applied in that order).
    :param always: compress even when the client did not ask for it.
    :param raw_deflate: send ``deflate`` without its zlib wrapper, as some servers do.
    :param members: gzip only: cut the body into this many gzip members.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        coding: str = "gzip",
        *,
        always: bool = False,
        raw_deflate: bool = False,
        members: int = 1,
    ) -> None:
        self.app = app
        self.codings = [c.strip() for c in coding.split(",")]
        self.header = coding
        self.always = always
        self.raw_deflate = raw_deflate
        self.members = members

    def accepts(self, environ: dict[str, Any]) -> bool:
        """Does ``Accept-Encoding`` allow every coding of ours (``q=0`` refuses one)?"""
        offered: dict[str, float] = {}
        for part in environ.get("HTTP_ACCEPT_ENCODING", "").lower().split(","):
            name, _, params = part.partition(";")
            weight = re.search(r"q\s*=\s*([0-9.]+)", params)
            offered[name.strip()] = float(weight.group(1)) if weight else 1.0
        return all(offered.get(c, offered.get("*", 0.0)) > 0 for c in self.codings)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not (self.always or self.accepts(environ)):
            return self.app(environ, start_response)
        state = {"compress": False}

        def compressing_start_response(status: str, headers: Headers, exc_info: Any = None) -> Any:
            encoded = any(name.lower() == "content-encoding" for name, _ in headers)
            if encoded or status[:3] in ("204", "304") or environ["REQUEST_METHOD"] == "HEAD":
                state["compress"] = False
                return start_response(status, headers, exc_info)
            state["compress"] = True
            kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
            vary = [v for k, v in kept if k.lower() == "vary"]
            if not any("accept-encoding" in v.lower() for v in vary):
                kept.append(("Vary", "Accept-Encoding"))
            kept.append(("Content-Encoding", self.header))
            start_response(status, kept, exc_info)
            return lambda data: None  # write() is not used by the apps in these tests

        return self._body(self.app(environ, compressing_start_response), state)

    def _body(self, app_iter: Iterable[bytes], state: dict[str, bool]) -> Iterator[bytes]:
        try:
            chunks = list(app_iter)  # a login body is small; members and stacked codings need it whole
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        if not state["compress"]:
            yield from chunks
            return
        data = b"".join(chunks)
        for coding in self.codings:
            data = self._encode(coding, data)
        yield data

    def _encode(self, coding: str, data: bytes) -> bytes:
        wbits = -zlib.MAX_WBITS if coding == "deflate" and self.raw_deflate else _WBITS[coding]
        if wbits > zlib.MAX_WBITS and self.members > 1:  # gzip: several members, one after the other
            step = max(1, -(-len(data) // self.members))
            return b"".join(self._encode_once(data[i : i + step], wbits) for i in range(0, len(data), step))
        return self._encode_once(data, wbits)

    @staticmethod
    def _encode_once(data: bytes, wbits: int) -> bytes:
        compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
        return compressor.compress(data) + compressor.flush()


def decoded_forms(body: bytes, depth: int = 3) -> list[bytes]:
    """``body`` and everything a client's decoders could make of it, codings stacked up to ``depth``.

    The test of "never the app's token, in any encoding": look for the token
    in every one of these, not only in what the headers claim.
    """
    forms = [body]
    if depth == 0:
        return forms
    for wbits in (16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS):
        data, rest = b"", body
        try:
            while rest:  # gzip may hold several members
                stream = zlib.decompressobj(wbits)
                data += stream.decompress(rest, 64 * 1024 * 1024)
                rest = stream.unused_data
        except zlib.error:
            if not data:
                continue
        forms += decoded_forms(data, depth - 1)
    return forms


def carries(body: bytes, secret: str) -> bool:
    """Is ``secret`` in the body as sent, or in any decoding of it?"""
    needle = secret.encode()
    return any(needle in form for form in decoded_forms(body))


def read(body: bytes, content_encoding: str | None) -> bytes:
    """What a client makes of a body: its codings undone, last applied first (stdlib only)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif coding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif coding != "identity":
            raise ValueError(f"no decoder for {coding}")
    return body
