"""End to end: gunicorn (2 sync workers) + wrk on loopback, bare app vs FixGuard vs Flask-Session.

    .venv/bin/python benchmarks/e2e.py                 # 4 servers, 3 interleaved rounds of 5 s each
    .venv/bin/python benchmarks/e2e.py --duration 3 --rounds 1 --json

Starts its own ``redis-server`` (free loopback port, no persistence) and four
gunicorn servers on free loopback ports, each ``-w 2 -k sync``, serving
``benchmarks/e2e_app.py``: the bare WSGI app; the same app wrapped in FixGuard
(RedisStore, default settings); the same view on bare Flask; and on Flask with
Flask-Session 0.8 (Redis). Every request carries a session cookie: a real
session for FixGuard and Flask-Session (made by one request beforehand, so
each measured request is a read-only session request), a 120-byte
``session=`` cookie the bare apps ignore. ``wrk`` (1 thread, ``--connections``
connections, ``--duration`` seconds, after a 1 s warm-up) loads one server at
a time; the servers take turns over ``--rounds`` rounds (in reverse order
every other round) and each server's throughput is the median of its rounds.
Ratios are paired: the median over rounds of one server's throughput ÷ the
other's in the same round, which cancels much of the drift of a small VM
(throughput alone moves by tens of percent between rounds). Traffic goes only to 127.0.0.1; every
run is bounded in time, and every process started here is stopped at the end.

Prints requests per second and the ratios: FixGuard ÷ bare (target ≥ 0.6),
Flask-Session ÷ bare (the issue saw 0.30) and Flask-Session ÷ bare Flask.
Exit status: 0 when the target passes, 1 when it fails, 2 when the run could
not be made.

``wrk``: Debian's package. When it is missing and this runs as root with
apt-get, it is installed (``apt-get install -y wrk``); otherwise the script
says how and exits 2. Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import COOKIE_VALUE, RedisServer, code_state, free_port, machine, versions

HERE = Path(__file__).resolve().parent

APPS = (
    ("bare", "bare WSGI app"),
    ("fixguard", "bare app + FixGuard (RedisStore)"),
    ("flask", "bare Flask app"),
    ("flask_session", "Flask + Flask-Session 0.8 (Redis)"),
)
HOST = "127.0.0.1"
START_TIMEOUT = 20
TARGET = 0.6


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when it can."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("wrk missing: installing Debian's package (apt-get install -y wrk)", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = [apt, "install", "-y", "-qq", "wrk"]
        if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, check=False)
            subprocess.run(cmd, env=env, capture_output=True, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk is not installed and could not be installed here: as root, run `apt-get install wrk` "
        "(Debian/Ubuntu), or put a wrk binary on PATH, then run this again"
    )


def _control_socket_flag() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (recent versions put it in ~/.gunicorn)."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


@dataclass
class Server:
    kind: str
    label: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    cookie: str = ""
    rps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, cookie: str = "") -> tuple[int, list[str]]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            conn.request(method, path, headers={"Cookie": cookie} if cookie else {})
            resp = conn.getresponse()
            resp.read()
            cookies = [v.split(";", 1)[0].strip() for k, v in resp.getheaders() if k.lower() == "set-cookie"]
            return resp.status, cookies
        finally:
            conn.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn ({self.kind}) exited:\n{self.log.read_text(errors='replace')}")
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if text.count("Booting worker with pid") >= 2:
                with contextlib.suppress(OSError):
                    if self.request("GET", "/")[0] == 200:
                        return
            time.sleep(0.1)
        raise SystemExit(f"gunicorn ({self.kind}) not ready in {START_TIMEOUT} s:\n{self.log.read_text()}")

    def make_cookie(self) -> None:
        """The Cookie header every measured request sends."""
        if self.kind == "fixguard":
            status, cookies = self.request("GET", "/fill?1")
            own = [c for c in cookies if c.startswith("fixguard=")]
            if status != 200 or not own:
                raise SystemExit(f"FixGuard did not create a session: {status} {cookies}")
            self.cookie = own[0]
        elif self.kind == "flask_session":
            status, cookies = self.request("POST", "/login")
            own = [c for c in cookies if c.startswith("session=")]
            if status != 200 or not own:
                raise SystemExit(f"Flask-Session did not create a session: {status} {cookies}")
            self.cookie = own[0]
        else:
            self.cookie = f"session={COOKIE_VALUE}"
        status, _ = self.request("GET", "/", self.cookie)
        if status != 200:
            raise SystemExit(f"{self.kind}: GET / with its cookie answered {status}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_server(
    kind: str,
    label: str,
    redis_url: str,
    workdir: Path,
    worker_class: str = "sync",
    threads: int = 1,
    env_extra: dict[str, str] | None = None,
    name: str = "",
) -> Server:
    """``gunicorn -w 2`` serving ``e2e_app:app`` of ``kind`` on a free loopback port (log in workdir).

    ``worker_class`` and ``threads`` are gunicorn's (``gthread`` uses the
    threads); ``env_extra`` reaches the app (``e2e_app`` reads its settings
    there); ``name`` tells apart the logs of servers of one kind.
    """
    port = free_port()
    log = workdir / f"gunicorn-{name or kind}.log"
    env = {
        **os.environ,
        **(env_extra or {}),
        "FIXGUARD_BENCH_APP": kind,
        "FIXGUARD_BENCH_REDIS_URL": redis_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH", "")])),
    }
    gunicorn = [sys.executable, "-m", "gunicorn"]
    args = [
        "--workers", "2", "--worker-class", worker_class, "--threads", str(threads),
        "--bind", f"{HOST}:{port}", "--error-logfile", str(log), "--log-level", "info", "--timeout", "30",
        *_control_socket_flag(), "e2e_app:app",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [*gunicorn, *args], env=env, cwd=str(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Server(kind, label, port, proc, log)


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


def wrk_output(
    wrk: str, server: Server, seconds: float, connections: int, load: list[str]
) -> tuple[float, str]:
    """wrk (1 thread) against one server on loopback for ``seconds``: requests/s and wrk's report.

    ``load`` is the rest of wrk's command line: ``-H`` headers, or ``-s`` a
    Lua script, then the URL.
    """
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", *load]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    found = _RPS.search(out.stdout)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed against {server.kind}:\n{out.stdout}\n{out.stderr}")
    return float(found.group(1)), out.stdout


def run_wrk(wrk: str, server: Server, seconds: float, connections: int) -> tuple[float, str]:
    """wrk against one server on loopback for ``seconds``; requests per second and any error line."""
    url = f"http://{HOST}:{server.port}/"
    rps, stdout = wrk_output(wrk, server, seconds, connections, ["-H", f"Cookie: {server.cookie}", url])
    problems = []
    non2xx = _NON2XX.search(stdout)
    if non2xx:
        problems.append(f"{non2xx.group(1)} non-2xx responses")
    errors = _ERRORS.search(stdout)
    if errors:
        problems.append(errors.group(0).strip())
    return rps, "; ".join(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server (default 3)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 60 or not 0 < args.rounds <= 10:
        parser.error("--duration must be in (0, 60] and --rounds in [1, 10]")

    wrk = ensure_wrk()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="fixguard-e2e-") as tmp, RedisServer() as redis_server:
        try:
            for kind, label in APPS:
                servers.append(start_server(kind, label, redis_server.url, Path(tmp)))
            for server in servers:
                server.wait_ready()
                server.make_cookie()
                run_wrk(wrk, server, 1, args.connections)  # warm-up: imports, connections, caches
            for i in range(args.rounds):
                for server in servers if i % 2 == 0 else reversed(servers):
                    rps, problems = run_wrk(wrk, server, args.duration, args.connections)
                    server.rps.append(rps)
                    if problems:
                        server.errors.append(problems)
        finally:
            for server in servers:
                server.stop()

    rps = {s.kind: statistics.median(s.rps) for s in servers}
    per_round = {s.kind: s.rps for s in servers}

    def paired(a: str, b: str) -> float:
        """Median over rounds of a's throughput ÷ b's in the same round."""
        return statistics.median(x / y for x, y in zip(per_round[a], per_round[b], strict=True))

    ratios = {
        "fixguard_vs_bare": paired("fixguard", "bare"),
        "flask_session_vs_bare": paired("flask_session", "bare"),
        "flask_session_vs_flask": paired("flask_session", "flask"),
        "flask_vs_bare": paired("flask", "bare"),
    }
    passed = ratios["fixguard_vs_bare"] >= TARGET
    result: dict[str, Any] = {
        "config": {"workers": 2, "worker_class": "sync", "wrk_threads": 1, "connections": args.connections,
                   "duration_s": args.duration, "rounds": args.rounds},
        "machine": machine(),
        "code": code_state(),
        "versions": versions("fixguard", "gunicorn", "Flask", "Flask-Session", "redis", "hiredis"),
        "servers": {s.kind: {"label": s.label, "rps": s.rps, "median_rps": rps[s.kind], "errors": s.errors}
                    for s in servers},
        "ratios": ratios,
        "target": {"fixguard_vs_bare_min": TARGET, "pass": passed},
    }  # fmt: skip
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(f"{'server (gunicorn -w 2 sync, wrk -t1 -c' + str(args.connections) + ')':44} {'req/s':>9} "
              f"{'÷ bare':>7}  rounds")  # fmt: skip
        for s in servers:
            per = ", ".join(f"{x:.0f}" for x in s.rps)
            errs = f"  ({'; '.join(s.errors)})" if s.errors else ""
            ratio = paired(s.kind, "bare")
            print(f"{s.label:44} {rps[s.kind]:>9.0f} {ratio:>7.2f}  {per}{errs}")
        verdict = "PASS" if passed else "FAIL"
        print(
            f"FixGuard ÷ bare: {ratios['fixguard_vs_bare']:.2f} (target ≥ {TARGET}: {verdict})"
            f" · Flask-Session ÷ bare: {ratios['flask_session_vs_bare']:.2f}"
            f" · Flask-Session ÷ bare Flask: {ratios['flask_session_vs_flask']:.2f}"
        )
        print(f"{args.duration:g} s per run, median of {args.rounds} interleaved round(s), loopback only; "
              f"code: {result['code']}")  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:  # a setup failure with a message (argparse's own exits carry ints)
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        status = 2
    sys.exit(status)
