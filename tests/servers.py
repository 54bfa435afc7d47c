"""Real gunicorn on loopback, for the tests that need a real server.

:class:`Gunicorns` starts gunicorn masters (``python -m gunicorn`` with sync
workers, ``-b 127.0.0.1:0`` so the kernel picks a free port, the error log in a
file) and stops every one it started when its ``with`` block ends, whatever
happened: SIGTERM to the master, then SIGKILL to its whole process group.
:meth:`Gunicorn.wait_ready` reads the port from the ``Listening at`` line and
waits, within a bounded time, until the workers have booted and the app
answers; on any failure the test fails with gunicorn's log attached.

The second half is what the two end-to-end tests (``test_e2e_gunicorn`` and
``test_e2e_bearer``) share: their server fixture, and :func:`on_every_worker`,
the client side of the ``X-E2E-Hold`` mechanism of :mod:`tests.e2e_app`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
TIMEOUT = 5  # seconds, for every HTTP request of the end-to-end tests
BOOTED = "Booting worker with pid"
STOP_TIMEOUT = 5  # seconds for a master to exit after SIGTERM, then for the SIGKILLed group to be reaped


@functools.cache
def no_control_socket() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (recent versions put it in ~/.gunicorn)."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


@dataclass
class Gunicorn:
    """One gunicorn master started by :meth:`Gunicorns.start`."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    workers: int
    access_log: Path | None = None
    port: int = 0
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    @property
    def label(self) -> str:
        return f"gunicorn {self.name}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def booted_pids(self) -> set[int]:
        """PIDs of every worker the log says was booted, alive or not."""
        return {int(pid) for pid in re.findall(rf"{BOOTED}: (\d+)", self.log_text())}

    def children(self) -> set[int]:
        """PIDs of the master's live children (its workers), from /proc."""
        children: set[int] = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("PPid:"):
                        if int(line.split()[1]) == self.proc.pid:
                            children.add(int(status.parent.name))
                        break
        return children

    def wait_ready(
        self,
        *,
        within: float,
        deadline: float | None = None,
        ready_line: str = BOOTED,
        count: int | None = None,
        fail_on: Sequence[str] = ("Traceback", "exited with code"),
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        """Until gunicorn listens, logged ``ready_line`` ``count`` times, and ``probe(base)`` is true.

        ``count`` is the number of workers unless given (0: listening is enough).
        ``within`` seconds from now, or until ``deadline`` (``time.monotonic()``)
        when several servers share one. A line of ``fail_on`` in the log (a
        worker that could not load the app) fails at once, and so does a master
        that exited. ``probe`` gets the base URL; a request that raised counts
        as not ready yet.
        """
        wanted = self.workers if count is None else count
        if deadline is None:
            deadline = time.monotonic() + within
        listening = re.compile(rf"Listening at: {self.scheme}://{re.escape(HOST)}:(\d+)")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.label} exited with {self.proc.returncode}:\n{self.log_text()}")
            text = self.log_text()
            if any(line in text for line in fail_on):
                pytest.fail(f"{self.label} could not load its app:\n{text}")
            found = listening.search(text)
            if found and text.count(ready_line) >= wanted:
                self.port = int(found.group(1))
                if probe is None:
                    return
                with contextlib.suppress(requests.RequestException):
                    if probe(self.base):
                        return
            time.sleep(0.05)
        pytest.fail(f"{self.label} not ready within {within} s:\n{self.log_text()}")

    def wait_exit(self, within: float) -> int:
        """The master's exit status, once it exits by itself within ``within`` seconds."""
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.label} did not exit within {within} s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM to the master, then SIGKILL to its whole process group; always reaped."""
        if self.proc.returncode is not None:
            return  # it died and was reaped already: its PID is no longer ours to signal
        self.proc.send_signal(signal.SIGTERM)  # graceful: workers finish, then exit
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            # WNOWAIT leaves the master a zombie, so its PID (our process group's ID)
            # cannot be reused by anyone before the killpg below.
            if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers, or a master that hung
        self.proc.wait(timeout=STOP_TIMEOUT)


class Gunicorns:
    """Starts gunicorn masters, logs in ``workdir``; stops every one at the end of its ``with`` block."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Gunicorn] = []

    def __iter__(self) -> Iterator[Gunicorn]:
        return iter(list(self.started))

    def __len__(self) -> int:
        return len(self.started)

    def start(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        *,
        workers: int = 1,
        threads: int = 1,
        tls: tuple[Path, Path] | None = None,
        worker_timeout: int = 10,
        config: Path | None = None,
        access_format: str | None = None,
    ) -> Gunicorn:
        """``gunicorn app`` in its own process group, not waited for (see :meth:`Gunicorn.wait_ready`).

        Its log is ``gunicorn-<name>.log`` in the work directory; with
        ``access_format``, the access log is ``gunicorn-<name>-access.log``.
        Sync workers, or gthread workers with ``threads`` > 1; ``tls`` is
        ``(certificate, key)`` for https.
        """
        log = self.workdir / f"gunicorn-{name}.log"
        access, access_options = None, []
        if access_format is not None:
            access = self.workdir / f"gunicorn-{name}-access.log"
            access_options = ["--access-logfile", str(access), "--access-logformat", access_format]
        command = [
            sys.executable, "-m", "gunicorn",
            *(["-c", str(config)] if config is not None else []),
            "--chdir", str(REPO),
            "-w", str(workers),
            *(["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]),
            *(["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls is not None else []),
            "-b", f"{HOST}:0",  # the kernel picks a free port; gunicorn logs which
            "--timeout", str(worker_timeout), "--graceful-timeout", "2",
            "--log-level", "info", "--error-logfile", "-",
            *access_options,
            *no_control_socket(),
            app,
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Gunicorn(name, proc, log, workers, access, scheme="https" if tls else "http")
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every master started here, even when stopping one of them fails."""
        errors: list[BaseException] = []
        for server in self.started:
            try:
                server.stop()
            except Exception as error:  # every server must be tried
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> Gunicorns:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


# --------------------------------------------------------------------------- the end-to-end apps


@dataclass
class E2EServer:
    """gunicorn serving ``tests.e2e_app`` or ``tests.e2e_bearer_app`` in one mode."""

    mode: str
    gunicorn: Gunicorn
    events_file: Path
    prefix: str

    @property
    def base(self) -> str:
        return self.gunicorn.base

    @property
    def workers(self) -> int:
        return self.gunicorn.workers

    def log_text(self) -> str:
        return self.gunicorn.log_text()

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line]

    def worker_pids(self) -> set[int]:
        """PIDs of the master's live children (its workers), from /proc."""
        return self.gunicorn.children()


S = TypeVar("S", bound=E2EServer)


@contextlib.contextmanager
def e2e_servers(
    cls: type[S],
    redis_server: Any,
    workdir: Path,
    *,
    app: str,
    label: str,
    workers: int,
    probe: str,
    start_timeout: float,
) -> Iterator[Callable[[str], S]]:
    """``start(mode)``: gunicorn serving ``app`` in ``mode``, ready; all stopped when the block ends.

    The app gets its configuration from the environment (see :mod:`tests.e2e_app`):
    the tests' Redis, a fresh key prefix ``<label>-<mode>-<random>:``, fresh keys,
    and an events file. Ready means ``workers`` booted and ``GET probe`` answered
    with the app's own 401.
    """
    redis_server.start()  # a fault test elsewhere may have left it stopped
    with Gunicorns(workdir) as pool:

        def start(mode: str) -> S:
            prefix = f"{label}-{mode}-{secrets.token_hex(4)}:"
            events = workdir / f"events-{mode}.jsonl"
            env = {
                **os.environ,
                "FIXGUARD_E2E_MODE": mode,
                "FIXGUARD_E2E_REDIS_URL": redis_server.url,
                "FIXGUARD_E2E_PREFIX": prefix,
                "FIXGUARD_E2E_SECRET": secrets.token_urlsafe(48),
                "FIXGUARD_E2E_APP_KEY": secrets.token_hex(32),  # read by e2e_bearer_app only
                "FIXGUARD_E2E_EVENTS": str(events),
            }
            server = cls(mode, pool.start(mode, app, env, workers=workers), events, prefix)
            server.gunicorn.wait_ready(
                within=start_timeout,
                probe=lambda base: requests.get(base + probe, timeout=1).status_code == 401,
            )
            return server

        yield start


def worker_pid(response: requests.Response) -> int:
    """The PID of the worker that answered (``X-Worker-Pid``)."""
    return int(response.headers["X-Worker-Pid"])


def on_every_worker(
    server: E2EServer, redis_server: Any, send: Callable[[dict[str, str]], requests.Response]
) -> list[requests.Response]:
    """``send(headers)`` once per worker, in parallel, each answered by a different worker.

    The first ``workers - 1`` requests carry ``X-E2E-Hold`` (see ``e2e_app``): each
    is parked in its worker until released, so the next one must be accepted by a
    worker that is still free. All are released once the last one has answered.
    """
    client = redis_server.client()
    tokens = [secrets.token_hex(8) for _ in range(server.workers - 1)]
    try:
        with ThreadPoolExecutor(len(tokens)) as pool:
            try:
                held = []
                for token in tokens:
                    held.append(pool.submit(send, {"X-E2E-Hold": token}))
                    parked = client.blpop([f"{server.prefix}held:{token}"], timeout=TIMEOUT)
                    assert parked is not None, f"a held request never reached a worker:\n{server.log_text()}"
                last = send({})
            finally:
                for token in tokens:
                    client.rpush(f"{server.prefix}release:{token}", "go")
            responses = [future.result(timeout=TIMEOUT + 1) for future in held] + [last]
    finally:
        client.close()
    pids = [worker_pid(response) for response in responses]
    assert len(set(pids)) == server.workers, pids
    return responses


def redis_dump(redis_server: Any, prefix: str) -> dict[str, bytes]:
    """Every key under ``prefix`` and its value (a set, such as a subject index, as its members joined)."""
    client = redis_server.client()
    try:
        dump: dict[str, bytes] = {}
        for key in client.scan_iter(match=prefix + "*"):
            if client.type(key) == b"set":
                dump[key.decode()] = b"\n".join(sorted(client.smembers(key)))
            else:
                dump[key.decode()] = client.get(key) or b""
        return dump
    finally:
        client.close()
