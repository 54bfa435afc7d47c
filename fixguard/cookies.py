"""Cookies in both directions: the request header the app sees, the jar, hardened Set-Cookie.

Inbound, fixguard rebuilds ``Cookie`` itself and keeps only pairs that every
common parser (werkzeug, ``http.cookies.SimpleCookie``, Django, WebOb) reads
the same way: a token name and a value of plain characters. Anything a lenient
parser could split into two cookies — whitespace, commas, quotes, backslashes,
an app cookie's ``name=`` inside a value — is dropped, because the vault is
only as strong as the most lenient parser behind it.

Outbound, the app's ``Set-Cookie`` for its own session cookies is parsed
(RFC 6265 §5.2) into the jar, and fixguard's own cookie is written with
:func:`werkzeug.http.dump_cookie` and every hardening attribute.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.http import dump_cookie, parse_date

# A name is an RFC 7230 token; a value uses only characters that RFC 6265
# allows *and* SimpleCookie reads literally (no backslash, comma, whitespace,
# semicolon or brackets, and quotes only around the whole value).
_VALUE = r"[A-Za-z0-9_!#%&'~`<>@:/$*+\-.^|(){}?=]*"
# A value may also be wrapped whole in double quotes (WebTest and old clients do
# that); with only plain characters inside, every parser unquotes it alike.
_PAIR = re.compile(rf"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=({_VALUE}|\"{_VALUE}\")")
# Names that SimpleCookie treats as attributes of the previous cookie.
_RESERVED = frozenset(
    ("expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version",
     "samesite", "partitioned")
)


@dataclass(slots=True)
class InboundCookies:
    """What the client sent, split into fixguard's own cookie and the pairs the app may see."""

    own: list[str]
    kept: list[str]
    dropped: int = 0
    oversized: bool = False


class RequestCookieFilter:
    """Splits a client's Cookie header. Bounded: one pass, capped length and count."""

    def __init__(self, own_name: str, app_cookies: Iterable[str], max_header: int, max_cookies: int):
        self.own_name = own_name
        self.own_prefix = own_name + "="
        self.blocked = frozenset(n.lower() for n in app_cookies) | {own_name.lower()}
        self.traps = tuple(f"{n.lower()}=" for n in app_cookies)
        self.max_header = max_header
        self.max_cookies = max_cookies

    def split(self, header: str) -> InboundCookies:
        """The client's own fixguard cookie values and the safe pairs, in order."""
        if ";" not in header and header.startswith(self.own_prefix):
            # the usual request from a client fixguard serves: its cookie alone
            return InboundCookies([header[len(self.own_prefix) :].strip(' \t"')], [])
        result = InboundCookies([], [])
        if len(header) > self.max_header:
            result.oversized = True
            return result
        own_name, blocked, traps, kept = self.own_name, self.blocked, self.traps, result.kept
        count = 0
        for piece in header.split(";"):
            piece = piece.strip(" \t")
            if not piece:
                continue
            count += 1
            if count > self.max_cookies:
                result.oversized = True
                result.own.clear()
                kept.clear()
                return result
            m = _PAIR.fullmatch(piece)
            if m is None:
                result.dropped += 1
                continue
            name = m.group(1)
            if name == own_name:
                result.own.append(m.group(2).strip('"'))
                continue
            lname = name.lower()
            if lname in blocked or lname in _RESERVED or name[0] == "$":
                result.dropped += 1
                continue
            if traps and "=" in m.group(2):
                lvalue = m.group(2).lower()
                if any(t in lvalue for t in traps):
                    result.dropped += 1
                    continue
            kept.append(piece)
        return result


@dataclass(frozen=True, slots=True)
class JarCookie:
    """One app cookie held server-side."""

    value: str
    path: str = "/"
    expires: float | None = None  # unix time; None: until the session ends

    def live(self, now: float) -> bool:
        """Has the app's own expiry not passed?"""
        return self.expires is None or self.expires > now


Jar = dict[str, JarCookie]


@dataclass(frozen=True, slots=True)
class SetCookie:
    """An app's Set-Cookie, reduced to what the jar needs."""

    name: str
    cookie: JarCookie | None  # None: the app deleted or expired it


def parse_set_cookie(header: str, request_path: str, now: float | None = None) -> SetCookie | None:
    """Parse one Set-Cookie value as a browser would (RFC 6265 §5.2); None if unusable."""
    pair, _, attrs = header.partition(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(" \t"), value.strip(" \t")
    if not eq or not name:
        return None
    now = time.time() if now is None else now
    path: str | None = None
    expires: float | None = None
    max_age: float | None = None
    for attr in attrs.split(";"):
        key, _, val = attr.partition("=")
        key, val = key.strip(" \t").lower(), val.strip(" \t")
        if key == "max-age":
            try:
                max_age = float(int(val))
            except ValueError:
                continue
        elif key == "expires":
            date = parse_date(val)
            if date is not None:
                expires = date.timestamp()
        elif key == "path" and val.startswith("/"):
            path = val
    if max_age is not None:
        expires = now + max_age
    if expires is not None and expires <= now:
        return SetCookie(name, None)
    if path is None:
        path = _default_path(request_path)
    return SetCookie(name, JarCookie(value, path, expires))


def _default_path(request_path: str) -> str:
    """RFC 6265 §5.1.4 default-path: the request path up to its last slash."""
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rfind("/")]


def path_matches(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 §5.1.4 path-match."""
    if cookie_path == "/" or request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


def jar_pairs(jar: Jar, request_path: str, now: float) -> list[str]:
    """The jar's cookies that a browser would send on this path, as ``name=value``."""
    out = []
    for name, c in jar.items():
        expires = c.expires
        if (expires is None or expires > now) and (c.path == "/" or path_matches(request_path, c.path)):
            out.append(name + "=" + c.value)
    return out


class CookieWriter:
    """fixguard's own Set-Cookie values: HttpOnly, Secure, SameSite, Path=/, no Domain.

    ``max_age`` None (the default) writes a browser-session cookie; seconds write a
    persistent one (``Max-Age`` and ``Expires``), never outliving its session's
    absolute end.
    """

    def __init__(self, name: str, secure: bool, samesite: str, max_age: float | None = None):
        self.name = name
        self.secure = secure
        self.samesite = samesite
        self.max_age = max_age
        self.clear = dump_cookie(
            name, "", max_age=0, expires=0, path="/", secure=secure, httponly=True, samesite=samesite
        )

    def set(self, value: str, session_end: float | None = None) -> str:
        """A cookie carrying a signed ID; ``session_end`` (Unix time) caps a persistent one."""
        age: int | None = None
        if self.max_age is not None:
            seconds = self.max_age if session_end is None else min(self.max_age, session_end - time.time())
            age = max(1, round(seconds))
        return dump_cookie(
            self.name, value, path="/", secure=self.secure, httponly=True, samesite=self.samesite, max_age=age
        )


def harden(header: str, secure: bool, samesite: str, httponly: bool) -> str:
    """Add the hardening attributes an app's own Set-Cookie lacks; change nothing else."""
    present = {part.partition("=")[0].strip(" \t").lower() for part in header.split(";")[1:]}
    extra = []
    if httponly and "httponly" not in present:
        extra.append("HttpOnly")
    if secure and "secure" not in present:
        extra.append("Secure")
    if "samesite" not in present:
        extra.append(f"SameSite={samesite}")
    return "; ".join([header, *extra]) if extra else header
