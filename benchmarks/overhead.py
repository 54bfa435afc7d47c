"""Request overhead of FixGuard (MemoryStore) over a bare WSGI app, in microseconds and ratios.

One process calls the apps directly: the environ is built once and copied per
call, cases run interleaved round-robin over several repeats, and medians are
reported, so machine noise hits every case alike. The ratio column compares
each overhead with one HMAC-SHA256 verification measured in the same run.

    python benchmarks/overhead.py [--json]

This is the first cut; the peer comparison (Flask-Session, Beaker), Redis
cases and the gunicorn + wrk run are the benchmarks issue's work.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any

from fixguard import FixGuard, MemoryStore

SECRET = "benchmark-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CALLS = 2000
REPEATS = 7


def bare(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app doing as little as possible; sets its session cookie on /write."""
    headers = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/write":
        headers.append(("Set-Cookie", f"session=v{time.perf_counter_ns()}; Path=/"))
    start_response("200 OK", headers)
    return [b"ok"]


def environ_for(path: str, cookie: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": BytesIO(b""),
    }
    if cookie:
        env["HTTP_COOKIE"] = cookie
    return env


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def timed(app: Any, environ: dict[str, Any]) -> float:
    """Median-ready sample: mean µs per call over CALLS calls."""
    start = time.perf_counter()
    for _ in range(CALLS):
        body = app(environ.copy(), _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - start) / CALLS * 1e6


def hmac_verify_us() -> float:
    key, msg = b"k" * 32, b"x" * 43
    sig = hmac.new(key, msg, hashlib.sha256).digest()
    start = time.perf_counter()
    for _ in range(CALLS):
        hmac.compare_digest(hmac.new(key, msg, hashlib.sha256).digest(), sig)
    return (time.perf_counter() - start) / CALLS * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args()

    guard = FixGuard(bare, secret_key=SECRET, secure=False, store=MemoryStore())
    # a session to read: one request that sets the app cookie gives us fixguard's cookie
    captured: list[str] = []

    def grab(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.extend(v.split(";")[0] for k, v in headers if k == "Set-Cookie")

    list(guard(environ_for("/write", None), grab))
    session_cookie = captured[0]
    cases: dict[str, tuple[Any, dict[str, Any]]] = {
        "bare app": (bare, environ_for("/", "theme=dark")),
        "fixguard, no cookie": (guard, environ_for("/", None)),
        "fixguard, other cookies only": (guard, environ_for("/", "theme=dark; lang=en")),
        "fixguard, read-only session": (guard, environ_for("/", session_cookie)),
        "fixguard, session write": (guard, environ_for("/write", session_cookie)),
    }
    samples: dict[str, list[float]] = {name: [] for name in [*cases, "HMAC-SHA256 verify"]}
    for _ in range(REPEATS):
        for name, (app, env) in cases.items():
            samples[name].append(timed(app, env))
        samples["HMAC-SHA256 verify"].append(hmac_verify_us())
    med = {name: statistics.median(v) for name, v in samples.items()}
    base, unit = med["bare app"], med["HMAC-SHA256 verify"]
    rows = []
    for name in cases:
        overhead = med[name] - base
        rows.append({
            "case": name,
            "us_per_request": round(med[name], 2),
            "overhead_us": round(overhead, 2),
            "overhead_in_hmac_verifies": round(overhead / unit, 2),
        })
    if args.json:
        json.dump({"hmac_verify_us": round(unit, 3), "rows": rows}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'case':32} {'µs/request':>11} {'overhead µs':>12} {'÷ HMAC verify':>14}")
    for r in rows:
        print(f"{r['case']:32} {r['us_per_request']:>11.2f} {r['overhead_us']:>12.2f} "
              f"{r['overhead_in_hmac_verifies']:>14.2f}")
    print(f"one HMAC-SHA256 verify: {unit:.2f} µs (medians of {REPEATS} interleaved runs of {CALLS} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
