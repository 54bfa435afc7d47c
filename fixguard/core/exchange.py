"""One request/response pair, whatever the server: the whole lifecycle, no I/O.

A shell (WSGI or ASGI) makes an :class:`Exchange` per request and drives its
steps, each a generator of :mod:`~fixguard.core.ops`:

1. :meth:`prepare` with the raw Cookie and Authorization headers: a refusal,
   or the headers the app sees; then :meth:`settle` (a login waits briefly
   for replays already inside the app);
2. :meth:`respond` with the app's status code and headers (the shell sets
   :attr:`processed` first, and turns a StoreError into :meth:`store_down`'s
   503): the headers that leave, or None when a login body is held back for
   its tokens (then :meth:`finish` with that body); :attr:`replacement` set
   means "send this refusal instead";
3. :meth:`abandon` if the app failed (or the client left) before answering:
   a freeze is undone, never left half-rotated.
"""

from __future__ import annotations

import time
from typing import Any

from ..encoding import Undecodable, content_codings, identity_headers
from ..encoding import decode as decode_body
from ..stores.base import StoreError
from ..tokens import dump_json, extract, load_json
from ..tokens import replace as replace_tokens
from .ops import Sleep, Steps
from .request import RequestPhase
from .response import ResponsePhase, without_detected_login
from .state import Headers


class Exchange(RequestPhase, ResponsePhase):
    """All per-request state and every decision; the shell only moves bytes."""

    def settle(self) -> Steps[None]:
        """A login waits for replays already inside the app; an empty session has nothing to ride on."""
        record = self.record
        riders = record is not None and bool(record.jar or record.bearer)
        if self.freeze_token and self.g.settings.settle_time > 0 and riders:
            yield Sleep(self.g.settings.settle_time)

    def finish(self, body: bytes | None) -> Steps[tuple[Headers, bytes] | None]:
        """The held-back login response: swap its tokens, rotate; its headers and body.

        ``body`` is the whole body, or None when it was over ``max_token_body``
        (then what was read so far goes first, the rest follows untouched).
        None when :attr:`replacement` is to be sent instead.
        """
        pending, self.pending = self.pending, None
        assert pending is not None
        document: Any = None
        app_tokens: list[str] | None = None
        codings = content_codings(pending.out)
        text, undecodable = body, ""
        if codings:  # read what the client would read: decoded, within the same bound
            try:
                text = decode_body(body, codings, self.g.settings.max_token_body)
            except Undecodable as exc:
                text, undecodable = None, str(exc)
        if undecodable:
            self.emit("token_body_refused", reason=undecodable, encoding=", ".join(codings)[:64])
        elif text is None:
            self.emit("token_body_skipped", reason="larger than max_token_body")
        else:
            try:
                document = load_json(text)
                app_tokens = extract(document, self.g.token_paths)
            except ValueError:
                self.emit("token_body_skipped", reason="not JSON")
        out = pending.out
        if self.token_login and self.via == "credentials" and not (app_tokens and any(app_tokens)):
            # credentials under a fixguard token, and no token in the answer: a password change
            # (the client keeps its token), not a login presenting a planted one
            pending.signals = without_detected_login(pending.signals)
        try:
            # an unreadable body still rotates: the app has logged someone in either way
            out = yield from self.commit(
                pending.out, pending.updates, pending.signals, pending.subject, app_tokens
            )
        except StoreError as exc:
            self.replacement = self.store_down(exc)
        if undecodable and self.replacement is None:
            self.replacement = self.undecodable_response()
        if self.replacement is not None:
            return None
        data = b"".join(pending.chunks) if body is None else body
        if app_tokens is not None and any(self.minted):
            replace_tokens(document, self.g.token_paths, self.minted)
            data = dump_json(document)
            if codings:
                out = identity_headers(out, len(data))
            else:
                out = [(k, str(len(data)) if k.lower() == "content-length" else v) for k, v in out]
        return out, data

    def abandon(self) -> Steps[None]:
        """The app failed (or the client left) before answering: undo our freeze, keep the session."""
        if not self.freeze_token or (self.processed and self.pending is None):
            return
        self.pending = None
        self.processed = True
        try:
            yield from self.failed_login(time.time(), [])
        except StoreError as exc:
            self.emit("store_unavailable", reason=type(exc).__name__)
