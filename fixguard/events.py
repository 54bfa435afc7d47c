"""Security events: what fixguard saw, for logs and for the app's own hook.

Events never carry an ID, a secret or a token: only a short keyed hash of the
ID (the ``fingerprint``), enough to correlate log lines without giving anyone
something to present. Each event is logged on the ``fixguard`` logger and, if
configured, handed to ``on_event``; a hook that raises is logged, never allowed
to break the request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("fixguard")

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
        level = LEVELS.get(event.kind, logging.WARNING)
        if log.isEnabledFor(level):
            extras = " ".join(f"{k}={_clean(v)}" for k, v in event.detail.items())
            log.log(
                level,
                "%s id=%s %s %s from=%s %s",
                event.kind,
                event.fingerprint or "-",
                _clean(event.method),
                _clean(event.path),
                _clean(event.remote_addr or "-"),
                extras,
            )
        if self.hook is not None:
            try:
                self.hook(event)
            except Exception:
                log.exception("fixguard on_event hook raised; the request goes on")


def _clean(value: Any) -> str:
    """One log-safe token: control characters escaped, length capped (paths are client input)."""
    text = str(value)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 200 else text[:200] + "..."
