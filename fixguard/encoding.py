"""Content codings of a held-back login body: decoded within a bound, or refused.

fixguard swaps the app's tokens in a login response, so it must read that
body as the client would. A body that arrives encoded (``Content-Encoding``)
is decoded here before its JSON is read. Only what the standard library
decodes is accepted: ``gzip`` (and its alias ``x-gzip``, several members
allowed) and ``deflate`` (zlib-wrapped, or raw as some servers send it);
several codings are undone in reverse order.

Trust nothing about the body: a few kilobytes of gzip can expand to
gigabytes. Decoding is incremental with ``max_length``, so no step ever
produces more than ``limit + 1`` bytes and the work is one pass over an input
the caller has already capped. Anything else — an unknown coding (``br``,
``zstd``, ``compress``), a malformed, truncated or padded stream, a body that
decodes past the limit — raises :class:`Undecodable`, and the caller refuses
the response rather than pass on a token it could not see.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

Headers = list[tuple[str, str]]

_GZIP, _ZLIB, _RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
_ALIASES = {"x-gzip": "gzip"}
_PIECE = 4096  # input fed to zlib per call


class Undecodable(ValueError):
    """A body fixguard cannot decode within its limit; the message says why (no body bytes in it)."""


def content_codings(headers: Headers) -> tuple[str, ...]:
    """The codings applied to the body, in the order they were applied; ``identity`` left out."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() == "content-encoding":
            for coding in value.split(","):
                coding = coding.strip(" \t").lower()
                if coding and coding != "identity":
                    found.append(_ALIASES.get(coding, coding))
    return tuple(found)


def decode(body: bytes | None, codings: Sequence[str], limit: int) -> bytes:
    """``body`` with ``codings`` undone, at most ``limit`` bytes at every step, or Undecodable.

    ``None`` stands for a body whose encoded form was already larger than the
    limit: it is refused like one that decodes too large.
    """
    if body is None:
        raise Undecodable("encoded body larger than max_token_body")
    for coding in reversed(codings):
        if coding == "gzip":
            body = _gunzip(body, limit)
        elif coding == "deflate":
            body = _inflate(body, limit)
        else:
            raise Undecodable(f"unsupported content coding {coding[:32]!r}")
    return body


def identity_headers(headers: Headers, length: int) -> Headers:
    """Headers for the decoded body sent as is: no Content-Encoding, the right Content-Length.

    ``Vary`` is left as the app set it: an identity body suits every client,
    whatever its ``Accept-Encoding``, so no cache key needs to change.
    """
    out = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    out.append(("Content-Length", str(length)))
    return out


def _gunzip(data: bytes, limit: int) -> bytes:
    """All gzip members of ``data`` (RFC 1952 allows several), one after the other."""
    out = bytearray()
    member, fed, members = zlib.decompressobj(_GZIP), False, 0
    for view in _pieces(data):
        piece: bytes | memoryview = view
        while piece:
            out += _step(member, piece, limit - len(out), "gzip")
            fed = True
            if not member.eof:
                break  # the whole piece went in; the member goes on in the next one
            members += 1
            piece = member.unused_data  # at most one piece: no quadratic copying
            member, fed = zlib.decompressobj(_GZIP), False
    if fed or not members:
        raise Undecodable("truncated gzip stream")
    return bytes(out)


def _inflate(data: bytes, limit: int) -> bytes:
    """HTTP ``deflate``: zlib-wrapped (RFC 1950) as specified, or raw deflate as some servers send."""
    try:
        return _one_stream(data, limit, _ZLIB)
    except _Malformed:
        return _one_stream(data, limit, _RAW)


def _one_stream(data: bytes, limit: int, wbits: int) -> bytes:
    out = bytearray()
    stream = zlib.decompressobj(wbits)
    for piece in _pieces(data):
        if stream.eof:
            raise Undecodable("bytes after the end of the deflate stream")
        out += _step(stream, piece, limit - len(out), "deflate")
    if not stream.eof:
        raise Undecodable("truncated deflate stream")
    if stream.unused_data:
        raise Undecodable("bytes after the end of the deflate stream")
    return bytes(out)


class _Malformed(Undecodable):
    """Not a stream of this format at all (a raw deflate stream read as zlib, say)."""


def _pieces(data: bytes) -> Iterator[memoryview]:
    """``data`` in small slices: what is left after a stream's end is copied a slice at a time."""
    view = memoryview(data)
    for start in range(0, len(view), _PIECE):
        yield view[start : start + _PIECE]


def _step(stream: zlib._Decompress, piece: bytes | memoryview, room: int, name: str) -> bytes:
    """Feed one piece, asking zlib for at most ``room + 1`` bytes: one more means too large.

    Below that bound zlib takes the whole piece (or stops at the stream's end,
    leaving the rest in ``unused_data``), so nothing is left in
    ``unconsumed_tail`` and nothing needs a ``flush()``, which has no bound.
    """
    try:
        out = stream.decompress(piece, room + 1)
    except zlib.error:
        raise _Malformed(f"malformed {name} stream") from None
    if len(out) > room:
        raise Undecodable("larger than max_token_body once decoded")
    return out
