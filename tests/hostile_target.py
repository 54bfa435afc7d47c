"""A hostile target for ``fixguard check``: it works as a login flow, and abuses every field.

:class:`HostileSite` decides the answers: titles, plain-text bodies,
``Content-Type``, ``Location`` and ``Set-Cookie`` names and values all carry
terminal escapes (CSI, OSC-8 hyperlinks, BEL, 8-bit C1 codes, a bidi
override), the start page is an endless body, the anonymous probe a 10 MB
one, and the login redirects to another host. It is served two ways:

* :class:`RawServer`, a socket server written here (a real server library
  would refuse or repair some of these headers), which can also stall or drip
  its answer one byte at a time;
* :func:`HostileSite.wsgi`, the same site as a WSGI app, for the in-process audit.

:class:`Listener` stands on another loopback address and counts connections:
the redirect points there, and the check must never go.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

HOST = "127.0.0.1"
OTHER_HOST = "127.0.0.2"

OSC8 = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
EVIL = f"\x1b[2J\x07{OSC8}\x9b31m\x9d0;title\x9c\u202e\x00"
#: Every character that must never reach the auditor's terminal raw.
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\x9d", "\x9c", "\u202e", "\x00")
HUGE = 10 * 1024 * 1024


class HostileSite:
    """The answers; alice/secret logs in (a fresh ``sid`` every time)."""

    def __init__(self, other_port: int) -> None:
        self.other_port = other_port
        self.logged_in: set[str] = set()

    def answer(
        self, method: str, path: str, cookies: dict[str, str], form: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], Iterator[bytes], int | None]:
        """Status, headers, body chunks, and the Content-Length (None: chunked, endless)."""
        html = [("Content-Type", f"text/html; charset=utf-8{EVIL[:4]}")]
        if path == "/":
            head = f"<!doctype html><title>Home {EVIL}</title>".encode()
            cookie = ("Set-Cookie", f"trk{EVIL[:2]}=v{EVIL[:3]}alue; Path=/")
            return 200, [*html, cookie], _endless(head), None
        if (method, path) == ("POST", "/login"):
            if (form.get("username"), form.get("password")) != ("alice", "secret"):
                return _fixed(401, html, f"<title>Denied {EVIL}</title>")
            sid = secrets.token_hex(16) + "\x1b[5m"
            self.logged_in.add(sid)
            location = f"http://{OTHER_HOST}:{self.other_port}/steal{EVIL[:8]}"
            headers = [("Location", location), ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly; SameSite=Lax")]
            return _fixed(302, headers, "")
        if path == "/profile":
            if cookies.get("sid") in self.logged_in:
                return _fixed(200, [("Content-Type", "text/plain")], f"Profile of alice {EVIL}\n")
            head = f"Not logged in {EVIL}\n".encode()
            return 401, [("Content-Type", "text/plain")], _padded(head, HUGE), HUGE
        if (method, path) == ("POST", "/logout"):
            self.logged_in.discard(cookies.get("sid", ""))
            return _fixed(200, [("Set-Cookie", "sid=; Path=/; Max-Age=0")], f"Bye {EVIL}")
        return _fixed(404, [("Content-Type", "text/plain")], f"Nothing {EVIL}")

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        """The same site as a WSGI app."""
        cookies = _cookies(environ.get("HTTP_COOKIE", ""))
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = _form(environ["wsgi.input"].read(size))
        status, headers, body, _ = self.answer(environ["REQUEST_METHOD"], environ["PATH_INFO"], cookies, form)
        start_response(f"{status} Whatever{EVIL[:2]}", headers)
        return body


def _fixed(
    status: int, headers: list[tuple[str, str]], text: str
) -> tuple[int, list[tuple[str, str]], Iterator[bytes], int | None]:
    data = text.encode()
    return status, headers, iter([data]), len(data)


def _endless(head: bytes) -> Iterator[bytes]:
    yield head
    while True:
        yield b"<p>more</p>" * 1000


def _padded(head: bytes, size: int) -> Iterator[bytes]:
    yield head
    left = size - len(head)
    while left > 0:
        chunk = b"x" * min(65536, left)
        left -= len(chunk)
        yield chunk


def _cookies(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        found[name] = value
    return found


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("latin-1")).items()}


class Listener:
    """A listening socket on another loopback address; counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((OTHER_HOST, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        self.sock.close()


class RawServer:
    """Serves :class:`HostileSite` from raw sockets, one thread per connection.

    ``mode``: ``normal``; ``stall`` (reads the request, never answers);
    ``drip-head`` (the status line, then a header byte every 0.1 s);
    ``drip-body`` (headers, then a body byte every 0.1 s).
    """

    def __init__(self, site: HostileSite, mode: str = "normal") -> None:
        self.site = site
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.base = f"http://{HOST}:{self.port}"
        self.hosts: list[str] = []  # the Host header of every request
        self.agents: set[str] = set()  # every User-Agent seen
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self.threads.append(accept)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            worker.start()
            self.threads.append(worker)

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            method, path, headers, body = _read_request(conn)
            self.hosts.append(headers.get("host", ""))
            self.agents.add(headers.get("user-agent", ""))
            if self.mode == "stall":
                self.stopped.wait(30)
                return
            if self.mode == "drip-head":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stopped.is_set():
                    conn.sendall(b"X")
                    time.sleep(0.1)
                return
            if self.mode == "drip-body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self.stopped.is_set():
                    conn.sendall(b"x")
                    time.sleep(0.1)
                return
            status, answer_headers, chunks, length = self.site.answer(
                method, path, _cookies(headers.get("cookie", "")), _form(body)
            )
            head = [f"HTTP/1.1 {status} Whatever{EVIL[:2]}"]
            head += [f"{name}: {value}" for name, value in answer_headers]
            head.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
            head.append("Connection: close")
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("utf-8"))
            for chunk in chunks:
                if self.stopped.is_set():
                    return
                conn.sendall(chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def close(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=2)
        self.sock.close()


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        more = conn.recv(4096)
        if not more:
            break
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" "), "", "", ""][:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    want = int(headers.get("content-length") or 0)
    while len(body) < want:
        more = conn.recv(4096)
        if not more:
            break
        body += more
    return method, path, headers, body
