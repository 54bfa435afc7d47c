"""Shared by the benchmarks: their own redis-server, the bare app, the peers' apps.

Everything here talks only to the redis-server it started itself, on a free
loopback port with persistence off (as ``tests/conftest.py`` does); no client
is ever built without an explicit URL, so nothing reaches a Redis on the
default port. Peers (Flask, Flask-Session, Beaker) are imported lazily: they
are the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import itertools
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SECRET = "benchmark-key-0123456789-abcdefghijklmnopqrstuvwxyz"
#: The app cookie every benchmark session holds: 120 bytes, like a signed framework cookie.
COOKIE_VALUE = secrets.token_urlsafe(90)
assert len(COOKIE_VALUE) == 120
_WRITE_PAD = COOKIE_VALUE[:112]
_counter = itertools.count()
_HEADERS_200 = [("Content-Type", "text/plain"), ("Content-Length", "2")]
_HEADERS_403 = [("Content-Type", "text/plain"), ("Content-Length", "9")]
#: What the failing login of ``failing_login_app`` spends before it answers: about 1 ms of CPU.
LOGIN_WORK_S = 0.001

BENCH_EXTRA_HINT = "install the benchmark extra: .venv/bin/pip install -e '.[bench]'"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1:<free port>, no persistence, in a temp dir."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit(
                "redis-server is not on PATH (Debian: apt-get install redis-server; "
                "./scripts/test.sh installs it)"
            )
        self.executable = executable
        self.workdir = Path(tempfile.mkdtemp(prefix="fixguard-bench-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def version(self) -> str:
        out = subprocess.run([self.executable, "--version"], capture_output=True, text=True, check=False)
        word = next((w for w in out.stdout.split() if w.startswith("v=")), "v=?")
        return word[2:]

    def client(self, **kwargs: Any) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self, cpu: int | None = None) -> RedisServer:
        """Start and wait for PING; ``cpu`` pins the server (all its threads) to that CPU."""
        if self.proc is not None:
            raise RuntimeError("this redis-server is already started")
        log = (self.workdir / "redis.log").open("ab")
        pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pin,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 10
        client = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except Exception:  # noqa: S110 - not up yet
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the apps ----------------------------------------------------------------------------


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app doing next to nothing; the paths the benchmarks use set its cookies.

    ``/write`` sets a new 120-byte ``session`` value each call (a jar change),
    ``POST /login`` sets one, ``/fill?N`` sets ``session`` and ``c1``..``c<N-1>``
    and ``/clear`` deletes ``session`` (setup only); everything else sets nothing.
    """
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", _HEADERS_200)
        return [b"ok"]
    headers = list(_HEADERS_200)
    if path == "/write":
        headers.append(("Set-Cookie", f"session={_WRITE_PAD}{next(_counter):08d}; Path=/"))
    elif path == "/login":
        headers.append(("Set-Cookie", f"session={COOKIE_VALUE}; Path=/"))
    elif path == "/clear":
        headers.append(("Set-Cookie", "session=; Max-Age=0; Path=/"))
    elif path == "/fill":
        n = int(environ.get("QUERY_STRING") or 1)
        headers.append(("Set-Cookie", f"session={COOKIE_VALUE}; Path=/"))
        headers.extend(("Set-Cookie", f"c{i}={COOKIE_VALUE}; Path=/") for i in range(1, n))
    start_response("200 OK", headers)
    return [b"ok"]


def failing_login_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``POST /login`` fails fast, as a wrong CSRF token or an unknown user does; else :func:`bare_app`.

    The login spends about 1 ms of CPU (``LOGIN_WORK_S``, a busy loop: the
    form parsing and checks of a framework) and answers ``403`` with no
    cookie, so the session goes on unchanged and can be presented again.
    """
    if environ["PATH_INFO"] == "/login":
        deadline = time.perf_counter() + LOGIN_WORK_S
        while time.perf_counter() < deadline:
            pass
        start_response("403 Forbidden", list(_HEADERS_403))
        return [b"forbidden"]
    return bare_app(environ, start_response)


def flask_app(redis_client: Any | None, prefix: str = "fsbench:") -> Any:
    """The same view on Flask: bare (no session backend) or with Flask-Session on Redis.

    ``GET /`` reads ``session["user"]``; ``POST /login`` writes it. Flask-Session
    0.8 with its defaults (permanent sessions refreshed on each request, no
    signer) then does ``GET`` + ``SET`` per read-only request.
    """
    try:
        import flask
    except ImportError as exc:
        raise SystemExit(f"Flask is missing: {BENCH_EXTRA_HINT}") from exc
    app = flask.Flask(f"bench-{'fs' if redis_client is not None else 'bare'}")
    if redis_client is not None:
        try:
            import flask_session
        except ImportError as exc:
            raise SystemExit(f"Flask-Session is missing: {BENCH_EXTRA_HINT}") from exc
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis_client, SESSION_KEY_PREFIX=prefix)
        flask_session.Session(app)

    @app.get("/")
    def index() -> str:
        flask.session.get("user")
        return "ok"

    @app.post("/login")
    def login() -> str:
        flask.session["user"] = "alice"
        return "ok"

    return app


def beaker_app(kind: str, redis_url: str | None = None) -> Any:
    """A bare WSGI app behind Beaker's SessionMiddleware, ``memory`` or ``ext:redis``.

    ``GET /`` reads ``session["user"]``; ``POST /login`` writes and saves it.
    Beaker 1.14's defaults (``save_accessed_time``) rewrite the session on every
    access, so ``ext:redis`` does ``GET`` + ``SETEX`` per read-only request.
    """
    try:
        from beaker.middleware import SessionMiddleware
    except ImportError as exc:
        raise SystemExit(f"Beaker is missing: {BENCH_EXTRA_HINT}") from exc

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = environ["beaker.session"]
        if environ["PATH_INFO"] == "/login":
            session["user"] = "alice"
            session.save()
        else:
            session.get("user")
        start_response("200 OK", list(_HEADERS_200))
        return [b"ok"]

    options: dict[str, Any] = {"session.type": kind, "session.timeout": 1800, "session.key": "beaker"}
    if kind == "ext:redis":
        assert redis_url is not None
        options["session.url"] = redis_url
    return SessionMiddleware(app, options)


def pin_cpu() -> int | None:
    """Pin this process to one CPU (the highest it may use); None where that is not possible.

    On a small VM a wake-up across cores costs far more than a switch on one
    core, and the scheduler flips between the two from run to run: a client and
    its Redis on one CPU give round trips that are stable between runs.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        return None
    cpu = max(cpus)
    os.sched_setaffinity(0, {cpu})
    return cpu


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
    }


def code_state() -> str:
    """The commit measured, and whether fixguard/ had uncommitted changes (read-only git calls)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fixguard"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted fixguard/ changes' if dirty else ''}"


def versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions ("-" if missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out
