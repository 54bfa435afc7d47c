"""Requests the check sends and what it keeps of the answers, whatever carries them.

A :class:`Request` is complete (headers and body bytes) before it reaches a
transport, so the HTTP transport and the in-process one send exactly the
same thing. An :class:`Answer` keeps the status, the redirect target, the
content type, at most :data:`MAX_BODY` bytes of the body and the
``Set-Cookie`` headers; nothing else of a hostile answer is looked at.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

MAX_BODY = 512 * 1024  # bytes read of any answer
MAX_SET_COOKIES = 100  # Set-Cookie headers kept of one answer
ACCEPT = "text/html,application/json;q=0.9,*/*;q=0.8"


@dataclass
class Request:
    """One request, ready to send: the path is below the target's prefix."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes | None = None


def build_request(
    method: str,
    path: str,
    *,
    user_agent: str,
    origin: str,
    prefix: str,
    cookies: dict[str, str],
    extra_headers: list[tuple[str, str]],
    form: list[tuple[str, str]] | None = None,
    json_body: Any = None,
    basic: tuple[str, str] | None = None,
    bearer: str | None = None,
    referer: str | None = None,
) -> Request:
    """What a browser (or an API client) would send; ``Origin`` and ``Referer`` with a form."""
    headers = [("User-Agent", user_agent), ("Accept", ACCEPT), ("Accept-Encoding", "identity")]
    headers.extend(extra_headers)
    if cookies:
        headers.append(("Cookie", "; ".join(f"{name}={value}" for name, value in cookies.items())))
    if basic is not None:
        headers.append(("Authorization", "Basic " + _basic_credentials(*basic)))
    elif bearer is not None:
        headers.append(("Authorization", f"Bearer {bearer}"))
    if method not in ("GET", "HEAD"):  # what a browser sends with a form: Django checks both on https
        headers.append(("Origin", origin))
        headers.append(("Referer", origin + prefix + (referer or "/")))
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.append(("Content-Type", "application/json"))
    elif form is not None:
        body = urlencode(form).encode("ascii")
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    elif method in ("POST", "PUT", "PATCH"):
        body = b""
    return Request(method, path, headers, body)


def _basic_credentials(user: str, password: str) -> str:
    raw = f"{user}:{password}"
    try:
        encoded = raw.encode("latin-1")  # what browsers and requests send
    except UnicodeEncodeError:
        encoded = raw.encode("utf-8")  # RFC 7617's charset="UTF-8"
    return base64.b64encode(encoded).decode("ascii")


@dataclass
class SetCookie:
    """One ``Set-Cookie`` header: name, value and attributes (lower-case names)."""

    name: str
    value: str
    attrs: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie | None:
        first, *rest = header.split(";")
        name, found, value = first.partition("=")
        if not found or not name.strip():
            return None
        attrs = {}
        for part in rest[:32]:
            key, _, val = part.partition("=")
            if key.strip():
                attrs[key.strip().lower()] = val.strip()
        return cls(name.strip(), value.strip(), attrs)

    @property
    def deletes(self) -> bool:
        """Max-Age <= 0, or Expires in the past: the client must forget the cookie."""
        if "max-age" in self.attrs:
            try:
                return int(self.attrs["max-age"]) <= 0
            except ValueError:
                return False
        if "expires" in self.attrs:
            try:
                when = email.utils.parsedate_to_datetime(self.attrs["expires"])
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
            return when.timestamp() <= time.time()
        return False


@dataclass
class Answer:
    """What the check keeps of one response."""

    method: str
    path: str
    status: int
    location: str
    content_type: str
    body: str
    set_cookies: list[SetCookie]

    @classmethod
    def build(cls, request: Request, status: int, headers: list[tuple[str, str]], body: bytes) -> Answer:
        """From the raw parts, whichever transport read them."""
        found: dict[str, str] = {}
        raw_cookies: list[str] = []
        for name, value in headers:
            lower = name.lower()
            if lower == "set-cookie":
                if len(raw_cookies) < MAX_SET_COOKIES:
                    raw_cookies.append(value)
            else:
                found.setdefault(lower, value)
        return cls(
            method=request.method,
            path=request.path,
            status=status,
            location=found.get("location", ""),
            content_type=found.get("content-type", ""),
            body=body[:MAX_BODY].decode("utf-8", errors="replace"),
            set_cookies=[c for c in map(SetCookie.parse, raw_cookies) if c is not None],
        )

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


@dataclass
class Client:
    """One browser: its own cookie jar."""

    jar: dict[str, str] = field(default_factory=dict)

    def absorb(self, answer: Answer) -> None:
        for cookie in answer.set_cookies:
            if cookie.deletes:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
