"""How the check shows what a target sent: secrets cut short, control characters escaped.

The target is not trusted. Its titles, bodies, headers and cookie names reach
the auditor's terminal or CI log only through :func:`printable`, which
escapes every control and format character (ESC, BEL, C1 codes such as the
8-bit OSC, bidirectional overrides, line separators), so no escape sequence,
hyperlink or hidden text can be smuggled into the report. Cookie values,
tokens and credentials are shown as their first few characters only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

_EXCERPT = 60
_MIN_SECRET = 8  # shorter values are not worth redacting (and would mangle words)
_LOOKED_AT = 20_000  # characters of a body searched for its title or first line
_SECRET_RUN = re.compile(r"[A-Za-z0-9_\-+=~%]{20,}")


def printable(text: str) -> str:
    """``text`` with every non-printable character written as an escape (``\\x1b``, ``\\u202e``).

    Unicode spaces other than the plain space become a plain space. Applying
    it twice changes nothing more: its output has no character it escapes.
    """
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif char.isspace() and ord(char) > 0x7F and char not in "\x85\u2028\u2029":
            out.append(" ")
        else:
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``change`` applied to every string inside lists and dicts (keys too)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list | tuple):
        return [map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {map_strings(key, change): map_strings(item, change) for key, item in value.items()}
    return value


def mask(value: str) -> str:
    """The first few characters of a secret, then an ellipsis."""
    keep = 6 if len(value) >= 16 else max(1, len(value) // 3)
    return value[:keep] + "…"


class Redactor:
    """Remembers every secret seen and masks it in anything printed."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                self.secrets.add(value)

    def clean(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, mask(secret))
        return text


def mask_runs(text: str) -> str:
    """Mask what looks like an ID or a token: 20+ characters of letters mixed with digits."""

    def one(found: re.Match[str]) -> str:
        run = found.group(0)
        return mask(run) if re.search(r"\d", run) and re.search(r"[A-Za-z]", run) else run

    return _SECRET_RUN.sub(one, text)


class Shown(Protocol):
    """What :func:`excerpt` needs of an answer."""

    status: int
    location: str
    content_type: str
    body: str


def excerpt(answer: Shown, clean: Callable[[str], str] = mask_runs) -> str:
    """``401 "Not logged in"``, ``302 -> /login``: an answer in a few words, secrets masked, escaped."""
    if answer.location:
        location = clean(answer.location)
        if len(location) > 2 * _EXCERPT:
            location = location[: 2 * _EXCERPT - 1] + "…"
        return f"{answer.status} -> {printable(location)}"
    body = answer.body[:_LOOKED_AT].strip()
    if "html" in answer.content_type or body.startswith("<"):
        title = _title(body)
        text = " ".join(html.unescape(title).split()) if title is not None else "an HTML page"
    else:
        text = next((line.strip() for line in body.splitlines() if line.strip()), "")
    text = clean(text)  # before cutting: a secret cut in half would no longer be recognised
    if len(text) > _EXCERPT:
        text = text[: _EXCERPT - 1] + "…"
    text = printable(text)
    return f'{answer.status} "{text}"' if text else f"{answer.status} (empty)"


def _title(body: str) -> str | None:
    """The text of the first ``<title>``, found in linear time (a hostile page can have thousands)."""
    lower = body.lower()
    start = lower.find("<title")
    opened = lower.find(">", start) if start >= 0 else -1
    end = lower.find("</title", opened) if opened >= 0 else -1
    return body[opened + 1 : end] if end >= 0 else None


def cookies_shown(jar: Mapping[str, str], names: Iterable[str] | None = None) -> str:
    """``sid=abc123…, theme=d…``: the named cookies of a jar, values masked."""
    chosen = list(names) if names is not None else list(jar)
    shown = ", ".join(f"{printable(name)}={printable(mask(jar[name]))}" for name in chosen if name in jar)
    return shown or "no cookie"
