"""Bearer tokens: the Authorization header in, the login response's token fields out.

The client only ever holds fixguard tokens (``fgt_<id>.<sig>``); the app's own
tokens stay server-side in the session record. Inbound, ``Authorization:
Bearer`` is parsed strictly (RFC 6750 token68, bounded length); a fixguard
token is translated to the app's token, anything else is discarded before the
app sees it. Outbound, a login response's JSON token fields (dotted paths) are
swapped for fresh fixguard tokens. Nothing here touches the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TOKEN_PREFIX = "fgt_"  # noqa: S105 - a marker, not a secret
MAX_AUTHORIZATION = 8192
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
_WORDS = re.compile(r"[\s,;]+")  # every separator any app's parser might split on
_JSON_TYPE = re.compile(r"^\s*application/(?:[\w.+-]*\+)?json\s*(?:;|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Bearer:
    """What an Authorization header says about bearer tokens."""

    token: str | None  # the token, if the header is a well-formed Bearer credential
    garbled: bool = False  # claims Bearer but is not one: discard it too

    @property
    def ours(self) -> bool:
        """Does it look like a token fixguard minted (signature still to be checked)?"""
        return self.token is not None and self.token.startswith(TOKEN_PREFIX)


NOT_BEARER = Bearer(None)


def parse_authorization(header: str) -> Bearer:
    """Classify an Authorization header. Other schemes (Basic, …) are not ours to touch.

    Strict where it matters: if the word ``bearer`` appears anywhere as a
    scheme-like word (after any whitespace, comma or case games an app's parser
    might accept: ``Bearer<TAB>x``, ``Basic y, Bearer x``), the header must be
    exactly ``Bearer <token68>`` or it is garbled and dropped whole.
    """
    if len(header) > MAX_AUTHORIZATION:
        return Bearer(None, garbled=True)
    if "bearer" not in _WORDS.split(header.lower()):
        return NOT_BEARER
    m = _BEARER.fullmatch(header.strip(" "))
    return Bearer(m.group(1)) if m else Bearer(None, garbled=True)


def is_json(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json``."""
    return bool(content_type) and _JSON_TYPE.match(content_type or "") is not None


def parse_paths(paths: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Dotted JSON paths, split once at start-up."""
    return tuple(tuple(p.split(".")) for p in paths)


def extract(document: Any, paths: tuple[tuple[str, ...], ...]) -> list[str]:
    """The string at each path ("" where there is none), by slot."""
    found = []
    for path in paths:
        node = document
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        found.append(node if isinstance(node, str) and node else "")
    return found


def replace(document: Any, paths: tuple[tuple[str, ...], ...], values: Sequence[str]) -> None:
    """Put ``values[i]`` at ``paths[i]`` where a token was found (in place)."""
    for path, value in zip(paths, values, strict=True):
        if not value:
            continue
        node = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value


def load_json(body: bytes) -> Any:
    """The body's JSON document, or raises ValueError."""
    return json.loads(body)


def dump_json(document: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
