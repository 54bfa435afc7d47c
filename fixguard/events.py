"""Security events: what fixguard saw, for logs and for the app's own hook.

Events never carry an ID, a secret or a token: only a short keyed hash of the
ID (the ``fingerprint``), enough to correlate log lines without giving anyone
something to present. Each event is logged on the ``fixguard`` logger and, if
configured, handed to ``on_event``; a hook that raises is logged, never allowed
to break the request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("fixguard")
# A library logs, the application decides where to: no "No handlers" fallback to stderr.
log.addHandler(logging.NullHandler())

# kind -> log level. Unknown kinds log at WARNING.
LEVELS: Mapping[str, int] = {
    "session_created": logging.DEBUG,
    "rotation": logging.INFO,
    "logout": logging.INFO,
    "unfrozen": logging.INFO,
    "expired": logging.INFO,
    "renewal": logging.INFO,
    "bad_signature": logging.INFO,
    "bad_cookie": logging.INFO,
    "frozen_request": logging.WARNING,
    "fixation_blocked": logging.WARNING,
    "race_blocked": logging.WARNING,
    "corrupt_record": logging.ERROR,
    "store_unavailable": logging.ERROR,
    "write_lost": logging.WARNING,
    "bad_token": logging.INFO,
    "token_blocked": logging.WARNING,
    "token_body_skipped": logging.WARNING,
    "token_body_refused": logging.ERROR,
    "unvaulted_cookie": logging.WARNING,
    "insecure_transport": logging.WARNING,
    "installed_twice": logging.ERROR,
}


@dataclass(frozen=True)
class Event:
    """One thing fixguard did or refused. ``kind`` names it (also readable as ``type``)."""

    kind: str
    fingerprint: str | None = None  # short keyed hash of the session ID involved
    method: str = ""
    path: str = ""
    remote_addr: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    @property
    def type(self) -> str:
        """Alias of ``kind``."""
        return self.kind

    def __getitem__(self, key: str) -> Any:
        """Mapping-style access to :meth:`as_dict`, for hooks that log JSON."""
        return self.as_dict()[key]

    def as_dict(self) -> dict[str, Any]:
        """A flat dictionary, safe to serialise."""
        return {
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "method": self.method,
            "path": self.path,
            "remote_addr": self.remote_addr,
            "time": self.time,
            **self.detail,
        }


class EventSink:
    """Sends events to the log and to the optional hook."""

    def __init__(self, hook: Callable[[Event], None] | None) -> None:
        self.hook = hook

    def emit(self, event: Event) -> None:
        """Log the event and call the hook, swallowing (and logging) hook failures."""
        if log.disabled:
            # logging.config's disable_existing_loggers=True (fileConfig's default, e.g. in
            # alembic's env.py) switches off every logger it does not name: not security events.
            # To quieten fixguard, set the level of the "fixguard" logger instead.
            log.disabled = False
        level = LEVELS.get(event.kind, logging.WARNING)
        if log.isEnabledFor(level):
            log.log(level, "%s", Line(event), extra=log_fields(event))
        if self.hook is not None:
            try:
                self.hook(event)
            except Exception:
                log.exception("fixguard on_event hook raised; the request goes on")


class Line:
    """An event as one logfmt line, built only if a handler formats it.

    ``fixation_blocked id=kZ03ZTwWBcYQ method=GET path="/x id=1 from=10.0.0.1" from=203.0.113.9
    reason=login``: every value that is empty or holds a space, a quote, ``=`` or a
    backslash is quoted, quotes and backslashes inside escaped, control characters
    escaped, and long values cut, so a client-chosen path cannot forge a field or a line.
    """

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event

    def __str__(self) -> str:
        e = self.event
        parts = [
            _key(e.kind),
            "id=" + _value(e.fingerprint or "-"),
            "method=" + _value(e.method),
            "path=" + _value(e.path),
            "from=" + _value(e.remote_addr or "-"),
        ]
        parts += [f"{_key(k)}={_value(v)}" for k, v in e.detail.items()]
        return " ".join(parts)


#: Attributes every LogRecord has: an ``extra`` key among them would make logging raise.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def log_fields(event: Event) -> dict[str, Any]:
    """The event's flat fields as ``extra``, so JSON formatters get them as fields.

    A field whose name a LogRecord already uses gets a ``fixguard_`` prefix.
    """
    return {
        ("fixguard_" + k if k in _RECORD_ATTRIBUTES else k): v for k, v in event.as_dict().items()
    }


_MAX_VALUE = 200
_PLAIN = re.compile(r"[^\s\"=\\]+")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def _value(value: Any) -> str:
    """One logfmt value: bare if plain, else quoted with ``\\`` and ``"`` escaped."""
    text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE] + "..."
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(key: Any) -> str:
    """A key (or the kind) as written by fixguard; anything else becomes a quoted value."""
    text = str(key)
    return text if _KEY.fullmatch(text) else _value(text)
