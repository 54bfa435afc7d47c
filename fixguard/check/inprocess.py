"""Carrying the check's requests to a WSGI app object in this process: no server, no socket.

``fixguard check --app MODULE:ATTR`` and :func:`fixguard.testing.audit` run
the very same audit through this transport: each request becomes a WSGI
environ (werkzeug's ``EnvironBuilder``, the one its test client uses), the
app is called, and at most :data:`~.messages.MAX_BODY` bytes of its body are
read before the iterable is closed, as a server would close it. What it
cannot do is interrupt a call: an app that never answers holds the check, as
it would hold a test. An exception from the app is reported as the reason the
check could not run, never as a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .messages import MAX_BODY, Answer, Request
from .report import CheckError
from .transport import Transport

WSGIApp = Callable[..., Iterable[bytes]]
_MAX_HEADERS = 200


class WsgiTransport(Transport):
    """Calls ``app`` with one environ per request, as ``origin`` + ``prefix`` would reach it."""

    def __init__(self, app: WSGIApp, origin: str, prefix: str) -> None:
        super().__init__()
        from werkzeug.test import EnvironBuilder, run_wsgi_app  # a runtime dependency, loaded on use

        self.app = app
        self.origin = origin
        self.prefix = prefix
        self._builder = EnvironBuilder
        self._run = run_wsgi_app

    def send(self, request: Request) -> Answer:
        self.sent += 1
        what = f"{request.method} {request.path}"
        builder = self._builder(
            path=self.prefix + request.path,
            base_url=self.origin,
            method=request.method,
            headers=request.headers,
            data=request.body,
            environ_base={"REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "49152"},
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        try:
            app_iter, status_line, headers = self._run(self.app, environ, buffered=False)
            try:
                chunks, size = [], 0
                for chunk in app_iter:
                    chunks.append(bytes(chunk))
                    size += len(chunk)
                    if size >= MAX_BODY:
                        break
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # the app's own failure: the reason the check could not run
            text = str(exc).splitlines()[0][:200] if str(exc) else ""
            said = f"{what}: the app raised {type(exc).__name__}" + (f": {text}" if text else "")
            raise CheckError(said) from None
        try:
            status = int(status_line.split(None, 1)[0])
        except (ValueError, IndexError):
            raise CheckError(f"{what}: the app answered the malformed status {status_line[:40]!r}") from None
        pairs = list(headers.items())[:_MAX_HEADERS]
        return Answer.build(request, status, pairs, b"".join(chunks))


def load_app(spec: str) -> WSGIApp:
    """The WSGI app named ``MODULE:ATTR`` (``ATTR`` may be dotted, or ``factory()`` to call it).

    The current directory is importable, as with ``gunicorn`` or ``flask --app``.
    """
    module_name, found, attr = spec.partition(":")
    if not found or not module_name or not attr:
        raise CheckError(f"--app {spec!r}: expected MODULE:ATTR, e.g. myproject.wsgi:application")
    call = attr.endswith("()")
    path = attr.removesuffix("()")
    if not all(part.isidentifier() for part in [*module_name.split("."), *path.split(".")]):
        raise CheckError(f"--app {spec!r}: expected MODULE:ATTR, e.g. myproject.wsgi:application")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckError(f"--app {spec}: cannot import {module_name} ({exc})") from None
    except Exception as exc:  # the module's own error at import: say which, no traceback
        raise CheckError(
            f"--app {spec}: importing {module_name} raised {type(exc).__name__}: {exc}"
        ) from None
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CheckError(f"--app {spec}: {module_name} has no attribute {path}") from None
    if call:
        try:
            obj = obj()
        except Exception as exc:  # the factory's own error
            raise CheckError(f"--app {spec}: calling {path}() raised {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise CheckError(f"--app {spec}: {path} is a {type(obj).__name__}, not a WSGI application")
    return obj  # type: ignore[no-any-return]
