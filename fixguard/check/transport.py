"""Carrying the check's requests to a running app over HTTP, and nowhere else.

It talks only to the URL given: a fresh connection per request to that one
origin, no redirect followed, no proxy or ``.netrc`` from the environment
(there is no library here that would read them). Every request has a
deadline for the whole exchange, not just per read: a watchdog shuts the
socket down when it passes, so a server that drips one byte a second cannot
hold the check. At most :data:`~.messages.MAX_BODY` bytes of a body are read,
and ``http.client`` bounds the headers (100 lines of 64 KiB).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from urllib.parse import urlsplit

from .messages import MAX_BODY, Answer, Request
from .report import CheckError


class Transport(ABC):
    """Sends :class:`~.messages.Request` objects to one target; counts them."""

    def __init__(self) -> None:
        self.sent = 0

    @abstractmethod
    def send(self, request: Request) -> Answer:
        """One request, one answer (or CheckError)."""

    def close(self) -> None:  # noqa: B027 - a transport that holds nothing has nothing to release
        """Release whatever the transport holds."""


class HttpTransport(Transport):
    """HTTP/1.1 to ``origin`` + ``prefix``, one connection per request, a deadline per request."""

    def __init__(self, origin: str, prefix: str, timeout: float) -> None:
        super().__init__()
        parts = urlsplit(origin)
        self.origin = origin
        self.prefix = prefix
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.timeout = timeout
        self.tls = ssl.create_default_context() if self.https else None

    def send(self, request: Request) -> Answer:
        self.sent += 1
        what = f"{request.method} {request.path}"
        connection: http.client.HTTPConnection
        if self.tls is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.tls
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.connect()
            if expired.is_set():
                raise TimeoutError
            connection.putrequest(request.method, self.prefix + request.path, skip_accept_encoding=True)
            for name, value in request.headers:
                connection.putheader(name, value)
            connection.putheader("Connection", "close")
            if request.body is not None:
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body)
            response = connection.getresponse()
            body = response.read(MAX_BODY)
            headers = response.getheaders()
            status = response.status
        except TimeoutError:
            raise CheckError(
                f"{what}: no complete answer from {self.origin} within {self.timeout:g} s"
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if expired.is_set():
                raise CheckError(
                    f"{what}: no complete answer from {self.origin} within {self.timeout:g} s"
                ) from None
            raise CheckError(f"{what}: {_why(exc, self.origin)}") from None
        finally:
            watchdog.cancel()
            connection.close()
        if expired.is_set() and len(body) < MAX_BODY:
            # the watchdog cut the body short: judging half an answer would be guessing
            raise CheckError(f"{what}: no complete answer from {self.origin} within {self.timeout:g} s")
        return Answer.build(request, status, headers, body)


def _why(exc: BaseException, origin: str) -> str:
    """A failure in a few words: what an operator can act on, not a traceback."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"could not connect to {origin}: TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ConnectionRefusedError):
        return f"could not connect to {origin}: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"could not connect to {origin}: unknown host"
    if isinstance(exc, http.client.RemoteDisconnected):
        return f"{origin} closed the connection without an answer"
    if isinstance(exc, ConnectionResetError):
        return f"{origin}: connection reset"
    if isinstance(exc, http.client.HTTPException):
        return f"{origin} sent an answer that is not valid HTTP ({type(exc).__name__})"
    if isinstance(exc, ssl.SSLError):
        return f"could not connect to {origin}: TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"could not connect to {origin}: {exc.strerror or type(exc).__name__}"
    return f"{type(exc).__name__}: {str(exc)[:160]}"
