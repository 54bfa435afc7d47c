"""FixGuard: the WSGI middleware that makes session fixation impossible for the app it wraps.

What it trusts: its own signed, server-side-recorded ID and nothing else the
client says about sessions. The app's session cookies (``app_cookies``) live
in a server-side jar; the client only ever holds fixguard's ID. Any client
copy of an app cookie is dropped before the app runs, and the header the app
sees is rebuilt from pairs every common parser reads alike.

This module is only the WSGI shell: every decision is made by
:mod:`fixguard.core`, whose steps it drives with the synchronous store
(:func:`fixguard.core.ops.drive`). Here: reading the environ, rewriting it for
the app, ``start_response``, and the body (held back for a login's tokens, or
replaced whole by a refusal). A request whose store does not answer gets a
503: fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .core.exchange import Exchange
from .core.guard import Guard
from .core.ops import Steps, drive
from .core.request import NOTHING_TO_CHANGE
from .core.state import Answer, Headers, plain
from .detect import read_body
from .events import Event
from .record import NO_SESSION
from .signals import ENVIRON_CONTEXT
from .stores.base import StoreError

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ENVIRON_SESSION = "fixguard.session"


class FixGuard(Guard):
    """Wrap a WSGI app so that every login hands the client a fresh, server-minted session ID.

    Takes the keywords of :class:`fixguard.core.guard.Guard` (every setting
    fixguard has), and :meth:`from_env` / :meth:`from_file` build it from a
    deployment's configuration.
    """

    app: WSGIApplication

    def check_app(self, app: Any) -> None:
        if isinstance(app, FixGuard):
            from .config import ConfigError

            raise ConfigError(
                "this app is already wrapped by FixGuard: wrap it once (two guards would each "
                "treat the other's cookie as foreign and break every login)"
            )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        outer = environ.get(ENVIRON_CONTEXT)
        if outer is not None and getattr(outer, "active", False):
            if getattr(outer, "g", None) is self:
                # an in-process sub-request reusing this request's environ: the outer call
                # already rebuilt its cookies and will answer for the session
                inner: Iterable[bytes] = self.app(environ, start_response)
                return inner
            return self.installed_twice(environ, start_response)
        return _Exchange(self, environ, start_response).run()

    def installed_twice(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Another FixGuard already handles this request: refuse loudly, never half-protect.

        Two guards in a row each see the other's cookie as foreign: logins
        would rotate one of them only, and the app's session would silently
        break or stay under an ID the outer guard never rotated.
        """
        self.events.emit(
            Event(
                "installed_twice",
                None,
                str(environ.get("REQUEST_METHOD", "")),
                str(environ.get("PATH_INFO", "")),
                str(environ.get("REMOTE_ADDR", "")),
                {
                    "hint": "fixguard is installed twice (e.g. the gunicorn hook around an app that wraps "
                    "itself): keep one of the two"
                },
            )
        )
        body = b"Server misconfiguration: fixguard is installed twice. See the server log.\n"
        start_response("500 Internal Server Error", plain(body))
        return [body]


class _Exchange(Exchange):
    """One WSGI request/response pair: the core's exchange plus start_response and the body.

    It is its own :class:`~fixguard.core.state.Request` too: ``method`` and
    ``path`` are read at once, the rest from the environ when the core asks
    (one object less per request on the hot path).
    """

    status = ""
    exc_info: OptExcInfo | None = None

    def __init__(self, guard: FixGuard, environ: WSGIEnvironment, start_response: StartResponse):
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.path = environ.get("PATH_INFO", "") or "/"
        super().__init__(guard, self)
        self.app = guard.app
        self.server_start_response = start_response

    @property
    def script_name(self) -> str:
        return str(self.environ.get("SCRIPT_NAME", "") or "")

    @property
    def content_type(self) -> str | None:
        return self.environ.get("CONTENT_TYPE")

    @property
    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", ""))

    @property
    def host(self) -> str:
        return str(self.environ.get("HTTP_HOST") or self.environ.get("SERVER_NAME") or "")

    @property
    def remote_addr(self) -> str:
        return str(self.environ.get("REMOTE_ADDR", ""))

    @property
    def context(self) -> WSGIEnvironment:
        return self.environ

    @property
    def view(self) -> WSGIEnvironment:
        return self.environ

    def drive(self, steps: Steps[Any]) -> Any:
        return drive(steps, self.g.store, self.read_body)

    def read_body(self, limit: int) -> bytes | None:
        return read_body(self.environ, limit)

    def run(self) -> Iterable[bytes]:
        """The request phase, then the app.

        Everything that reads the client's cookie and token happens in
        :meth:`prepare_environ`, whose frame has returned before the app runs:
        an app exception unwinds only through this frame, whose locals hold no
        secret (error reporters record them).
        """
        refusal = self.prepare_environ()
        if refusal is not None:
            return self.refuse_now(refusal)
        if self.freeze_token:
            self.drive(self.settle())
        try:
            app_iter = self.app(self.environ, self.start_response)
        except BaseException:
            self.active = False
            self.drive(self.abandon())
            raise
        if self.processed and self.replacement is None and self.pending is None:
            self.active = False
            return app_iter
        return _Body(self, app_iter)

    def prepare_environ(self) -> Answer | None:
        """Run the request phase and rewrite the environ for the app; a refusal, or None."""
        environ = self.environ
        cookie, authorization = environ.get("HTTP_COOKIE"), environ.get("HTTP_AUTHORIZATION")
        prepared = self.unneeded(cookie, authorization)
        if prepared is NOTHING_TO_CHANGE:  # the commonest request: no session, nothing to rewrite
            environ.pop("HTTP_COOKIE", None)
            environ[ENVIRON_SESSION] = NO_SESSION
            environ[ENVIRON_CONTEXT] = self
            return None
        if prepared is None:
            prepared = drive(self.prepare(cookie, authorization), self.g.store, self.read_body)
        if prepared.refusal is not None:
            refusal: Answer = prepared.refusal
            return refusal
        if prepared.authorization is not None:
            if prepared.authorization:
                environ["HTTP_AUTHORIZATION"] = prepared.authorization
            else:
                environ.pop("HTTP_AUTHORIZATION", None)
        if prepared.cookie is not None:
            environ["HTTP_COOKIE"] = prepared.cookie
        else:
            environ.pop("HTTP_COOKIE", None)
        environ[ENVIRON_SESSION] = self.info()
        environ[ENVIRON_CONTEXT] = self
        if prepared.drop_accept_encoding:
            environ.pop("HTTP_ACCEPT_ENCODING", None)
        return None

    def start_response(
        self, status: str, headers: Headers, exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if self.processed:
            if exc_info is None:
                raise AssertionError("start_response called twice without exc_info")
            if self.replacement is not None:
                rstatus, rheaders, _ = self.replacement
                return self.server_start_response(rstatus, rheaders, exc_info)
            kept, _, _, _ = self.scan(headers)
            return self.server_start_response(status, kept + self.sent_outcome(), exc_info)
        self.processed = True
        out: Headers | None = self.settled(headers)
        if out is None:
            try:
                code = int(status[:3])
            except ValueError:
                code = 500
            try:
                out = drive(self.respond(code, headers), self.g.store)
            except StoreError as exc:
                self.replacement = self.store_down(exc)
        if self.replacement is not None:
            rstatus, rheaders, _ = self.replacement
            self.server_start_response(rstatus, rheaders, exc_info)
            return _discard
        if out is None:
            assert self.pending is not None
            self.status, self.exc_info = status, exc_info
            return self.pending.chunks.append  # held back until the body is read
        write = self.server_start_response(status, out, exc_info)
        if self.outcome:
            self.seal_outcome()
        return write

    def finish_body(self, body: bytes | None) -> bytes:
        """The held-back login response: swap its tokens, rotate, then let it leave."""
        done = self.drive(self.finish(body))
        if done is None:
            assert self.replacement is not None
            rstatus, rheaders, rbody = self.replacement
            self.server_start_response(rstatus, rheaders, self.exc_info)
            return rbody
        out, data = done
        self.server_start_response(self.status, out, self.exc_info)
        self.seal_outcome()
        return bytes(data)

    def refuse_now(self, response: Answer) -> Iterable[bytes]:
        self.processed = True
        status, headers, body = response
        self.server_start_response(status, headers)
        return [] if self.method == "HEAD" else [body]


class _Body:
    """The app's body, guarded: replaced whole if start_response decided to refuse."""

    def __init__(self, exchange: _Exchange, app_iter: Iterable[bytes]) -> None:
        self.exchange = exchange
        self.app_iter = app_iter

    def __iter__(self) -> Iterator[bytes]:
        ex = self.exchange
        it = iter(self.app_iter)
        if ex.replacement is None:
            for chunk in it:
                if ex.replacement is not None:
                    break
                if ex.pending is not None:
                    yield from self.held_back(chunk, it)
                    return
                yield chunk
            else:
                if ex.pending is not None:
                    yield from self.held_back(b"", it)
                    return
        if ex.replacement is not None and ex.method != "HEAD":
            yield ex.replacement[2]

    def held_back(self, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
        """Read a login body whole (up to max_token_body), then send it rewritten."""
        ex = self.exchange
        assert ex.pending is not None
        chunks = ex.pending.chunks
        chunks.append(first)
        size, cap = sum(len(c) for c in chunks), ex.g.settings.max_token_body
        if size <= cap:
            for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    break
        whole = b"".join(chunks) if size <= cap else None
        data = ex.finish_body(whole)
        if ex.method != "HEAD":
            yield data
        if whole is None and ex.replacement is None:
            yield from rest

    def close(self) -> None:
        try:
            close = getattr(self.app_iter, "close", None)
            if close is not None:
                close()
        finally:
            self.exchange.active = False
            self.exchange.drive(self.exchange.abandon())


def _discard(data: bytes) -> None:
    """write() for a response fixguard replaced: the app's bytes go nowhere."""
