"""Credential detection: recognise a login by what the request carries, with no rule.

Two kinds of credentials are recognised before the app runs:

* ``Authorization: Basic`` or ``Digest``: the username is extracted (the
  header decoded as latin-1, so hostile bytes can never raise) and only a keyed
  hash of it is kept, to tell a new login from a browser re-sending the same
  user's credentials on every request. The password is never looked at.
* a ``POST``, ``PUT`` or ``PATCH`` body — urlencoded, multipart or JSON — of
  at most ``max_detect_body`` bytes with a field whose *name* contains one of
  ``credential_fields`` (case-insensitive, at any depth in JSON). Values are
  never kept, logged or compared.

What it trusts: nothing. Bodies are read only up to a bound and handed back
to the app byte for byte (:class:`ReplayedInput`), with ``CONTENT_LENGTH`` as
it was; a body over the bound, of another type, or that does not parse passes
uninspected. Detection cannot see logins that carry no credentials in the
request (OAuth/SSO callbacks, magic links, WebAuthn): those need a rule.
"""

from __future__ import annotations

import binascii
import io
import json
import re
from base64 import b64decode
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import unquote_plus

_READ_CHUNK = 64 * 1024
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_JSON = re.compile(r"^application/(?:[\w.+-]+\+)?json$", re.IGNORECASE)
_DIGEST_USER = re.compile(r'(?:^|[\s,])username\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', re.IGNORECASE)
BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


def authorization_user(header: str) -> str | None:
    """The username of a ``Basic`` or ``Digest`` Authorization header, or None.

    Never raises: a header that does not decode is simply not a credential.
    """
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            raw = b64decode(rest.strip().encode("latin-1"), validate=True)
        except (binascii.Error, UnicodeError, ValueError):
            return None
        user, colon, _ = raw.decode("latin-1").partition(":")
        return user if colon else None
    if scheme == "digest":
        found = _DIGEST_USER.search(rest)
        if found is None:
            return None
        return found.group(1) if found.group(1) is not None else found.group(2)
    return None


class ReplayedInput(io.RawIOBase):
    """``wsgi.input`` for the app: the bytes fixguard read first, then the rest of the stream.

    Wrapped in :class:`io.BufferedReader` it offers ``read(n)``, ``readline``,
    ``readlines`` and iteration, as every WSGI form parser expects.
    """

    def __init__(self, head: bytes, rest: IO[bytes] | None) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(out), len(self._head))
            out[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._rest is None:
            return 0
        data = self._rest.read(len(out))
        if not data:
            return 0
        out[: len(data)] = data
        return len(data)


def replay(head: bytes, rest: IO[bytes] | None) -> IO[bytes]:
    """A buffered reader over :class:`ReplayedInput`; a plain BytesIO when nothing follows."""
    if rest is None:
        return io.BytesIO(head)
    return io.BufferedReader(ReplayedInput(head, rest))


def read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The request body if it is at most ``limit`` bytes, put back for the app; else None.

    With ``CONTENT_LENGTH``: read exactly that many bytes (in a loop: a read may
    return less), or nothing at all when it is over the limit. Without one, only
    a terminated stream (``wsgi.input_terminated``) is read, up to ``limit + 1``
    bytes; if there is more, what was read is chained with the rest, uninspected.
    """
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    length_text = environ.get("CONTENT_LENGTH")
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            return None
        if length < 0 or length > limit:
            return None
        chunks: list[bytes] = []
        left = length
        while left > 0:
            data = stream.read(min(left, _READ_CHUNK))
            if not data:
                break
            chunks.append(data)
            left -= len(data)
        body = b"".join(chunks)
        environ["wsgi.input"] = replay(body, None)
        return body
    if not environ.get("wsgi.input_terminated"):
        return None  # no length and no end marker: reading could block, or never stop
    chunks = []
    size = 0
    while size <= limit:
        data = stream.read(min(limit + 1 - size, _READ_CHUNK))
        if not data:
            break
        chunks.append(data)
        size += len(data)
    head = b"".join(chunks)
    if size > limit:
        environ["wsgi.input"] = replay(head, stream)
        return None
    environ["wsgi.input"] = replay(head, None)
    return head


def field_names(content_type: str, body: bytes, limit: int) -> Iterator[str]:
    """The field names of a form, multipart or JSON body (nothing for any other type)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == _FORM:
        yield from _form_names(body)
    elif media == _MULTIPART:
        yield from _multipart_names(content_type, body, limit)
    elif _JSON.match(media):
        yield from _json_names(body)


def _form_names(body: bytes) -> Iterator[str]:
    for pair in body.decode("latin-1").split("&"):
        name = pair.split("=", 1)[0]
        if name:
            yield unquote_plus(name, encoding="latin-1")


def _multipart_names(content_type: str, body: bytes, limit: int) -> Iterator[str]:
    from werkzeug.formparser import parse_form_data

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    try:
        _, form, files = parse_form_data(environ, max_content_length=limit, silent=True)
    except Exception:  # a body werkzeug refuses is not a credential
        return
    try:
        yield from form.keys()  # file parts are uploads, not credentials
    finally:
        for upload in files.values():
            upload.close()


def _json_names(body: bytes) -> Iterator[str]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return
    stack: list[Any] = [document]
    while stack:  # iterative: a deeply nested body cannot exhaust the interpreter's stack
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield str(key)
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))


def may_carry(body: bytes, fields: tuple[str, ...]) -> bool:
    """Could this body name a credential field at all? A cheap scan before any parsing.

    Most bodies are not logins; a field name appears in the raw bytes unless it
    is escaped (``%``-encoding in a form, ``\\u`` in JSON, ``*=`` in a
    multipart header), and such bodies are parsed in full.
    """
    lowered = body.lower()
    if any(field.encode("utf-8", "replace") in lowered for field in fields):
        return True
    return b"%" in body or b"\\u" in body or b"*=" in body


def carries_credentials(names: Iterable[str], fields: tuple[str, ...]) -> bool:
    """Does any field name contain one of ``fields`` (lower case), case-insensitively?"""
    return any(needle in name.lower() for name in names for needle in fields)
