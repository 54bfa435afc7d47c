"""What credential detection costs: a form login with and without it, a GET and other bodies with it on.

    .venv/bin/python benchmarks/detection.py           # full run (a few seconds)
    .venv/bin/python benchmarks/detection.py --quick   # smoke run, same shape
    .venv/bin/python benchmarks/detection.py --json    # machine-readable

One process calls FixGuard (MemoryStore, ``settle_time=0`` so the login's wait
does not hide the parsing) around the benchmarks' bare app; each case's
environ is prepared outside the timer, with a fresh ``wsgi.input`` per call.
Cases, each with ``detect_logins`` on and off, paired in one round so machine
noise hits both alike (the figure is the median over rounds of on - off):

* ``GET`` of a live session: detection must cost nothing (no body to read);
* a form login (``POST /signin``, ``username`` + ``password``, 60 bytes) on a
  live session: with detection it is a login (parse, freeze, rotate); without,
  an ordinary write — the difference is what recognising and rotating costs;
* a form ``POST`` that is not a login (8 fields, 1 KiB, no password field):
  the cost of reading and parsing a body that turns out not to be credentials;
* a JSON ``POST`` of 16 KiB with no credential field: the same for JSON;
* a body over ``max_detect_body``: passes uninspected (only a length check).

Exit status 0, or 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SECRET, bare_app, machine

from fixguard import FixGuard, MemoryStore

Env = dict[str, Any]


def environ(method: str, path: str, cookie: str | None, body: bytes = b"", content_type: str = "") -> Env:
    env: Env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench.local",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "_body": body,
    }
    if cookie:
        env["HTTP_COOKIE"] = cookie
    if body or content_type:
        env["CONTENT_TYPE"] = content_type
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def call(app: Any, env: Env) -> list[str]:
    env = dict(env)
    env["wsgi.input"] = io.BytesIO(env.pop("_body"))
    cookies: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        cookies.extend(v.split(";", 1)[0] for k, v in headers if k.lower() == "set-cookie")

    body = app(env, start_response)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return cookies


class Setup:
    """Two guards on one store, detection on and off, and fresh sessions on demand."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        common: dict[str, Any] = {"secret_key": SECRET, "secure": False, "store": self.store,
                                  "login": (), "settle_time": 0, "max_detect_body": 65536}  # fmt: skip
        self.on = FixGuard(bare_app, detect_logins=True, **common)
        self.off = FixGuard(bare_app, detect_logins=False, **common)

    def session(self) -> str:
        for pair in call(self.on, environ("GET", "/fill", None)):
            if pair.startswith("fixguard="):
                return pair
        raise RuntimeError("no session was created")


def cases(setup: Setup) -> dict[str, Callable[[int], list[Env]]]:
    login = b"username=alice&password=correct-horse-battery-staple&next=%2F"
    form = "&".join(f"field{i}=" + "v" * 120 for i in range(8)).encode()
    doc = json.dumps({"items": [{"name": f"item{i}", "qty": i, "note": "x" * 100} for i in range(120)]})
    big = b"password=x&pad=" + b"a" * 70_000
    read_cookie = setup.session()

    def fresh(method: str, path: str, body: bytes, ctype: str) -> Callable[[int], list[Env]]:
        return lambda n: [environ(method, path, setup.session(), body, ctype) for _ in range(n)]

    urlencoded = "application/x-www-form-urlencoded"
    return {
        "GET, live session": lambda n: [environ("GET", "/", read_cookie)] * n,
        "form login (60 B)": fresh("POST", "/signin", login, urlencoded),
        "form POST, not a login (1 KiB)": fresh("POST", "/save", form, urlencoded),
        "JSON POST, not a login (16 KiB)": fresh("POST", "/api/items", doc.encode(), "application/json"),
        "body over max_detect_body (70 KiB)": fresh("POST", "/upload", big, urlencoded),
    }


def sample(app: Any, envs: list[Env]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for env in envs:
            call(app, env)
        return (time.perf_counter() - start) / len(envs) * 1e6
    finally:
        gc.enable()


def run(repeats: int, calls: int) -> dict[str, Any]:
    setup = Setup()
    rows: dict[str, Any] = {}
    for name, make in cases(setup).items():
        on: list[float] = []
        off: list[float] = []
        extra: list[float] = []
        for round_ in range(repeats):
            pair = [(setup.on, on), (setup.off, off)]
            if round_ % 2:
                pair.reverse()
            for app, out in pair:
                out.append(sample(app, make(calls)))
            extra.append(on[-1] - off[-1])
        rows[name] = {
            "detect_on_us": round(statistics.median(on), 2),
            "detect_off_us": round(statistics.median(off), 2),
            "detection_cost_us": round(statistics.median(extra), 2),
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds, for a smoke test")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    repeats, calls = (3, 50) if args.quick else (11, 400)
    rows = run(repeats, calls)
    if args.json:
        print(json.dumps({"machine": machine(), "repeats": repeats, "calls": calls, "rows": rows}, indent=2))
        return 0
    print(f"credential detection, MemoryStore, settle_time=0 · medians of {repeats} rounds x {calls} calls")
    print(f"{'case':<38} {'detect on µs':>13} {'off µs':>9} {'cost µs':>9}")
    for name, row in rows.items():
        on, off, cost = row["detect_on_us"], row["detect_off_us"], row["detection_cost_us"]
        print(f"{name:<38} {on:>13.2f} {off:>9.2f} {cost:>9.2f}")
    print("'form login': with detection it is a login (parse, freeze, rotate), without an ordinary write.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
