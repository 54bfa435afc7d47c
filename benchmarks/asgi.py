"""FixGuardMiddleware's read-only cost on Redis, against one ``redis.asyncio`` GET and Starlette's sessions.

    .venv/bin/python benchmarks/asgi.py            # full run (about 15 s)
    .venv/bin/python benchmarks/asgi.py --quick    # smoke run, same shape
    .venv/bin/python benchmarks/asgi.py --json     # machine-readable

Needs ``redis-server`` on PATH and the ``asgi`` extra (Starlette). Exit
status: 0 when the targets pass, 1 when one fails, 2 when the run could not
be made.

**Targets** (issue "One core, two servers"): a read-only request of a session
holding one 120-byte app cookie, through FixGuardMiddleware on an
AsyncRedisStore, costs at most 1.5 x one ``await client.get(key)`` on
``redis.asyncio`` over the bare ASGI app, and makes exactly 1 Redis round
trip.

**Timing.** One event loop calls the ASGI apps directly with a prepared scope
(copied per call, as a server builds one per request), a ``receive`` that
hands out one empty ``http.request`` and a ``send`` that drops messages. A
sample is the mean of N calls (N calibrated to ``--sample-ms``), with the
garbage collector paused. Every case gives one sample per round, round-robin,
every other round reversed. Overhead = case sample - bare sample of the same
round; the ratio is the median over rounds of (fixguard overhead ÷ GET sample
of the same round). Like ``overhead.py``, the harness and its redis-server
are pinned to one CPU (``--no-pin`` to leave placement to the scheduler).

**Peer.** Starlette's ``SessionMiddleware`` (a signed cookie, no store) on
the same bare app, reading ``session["user"]``: what an ASGI app pays for
sessions without fixation protection. **Round trips**: Redis's ``INFO
commandstats`` around an untimed batch of K read-only requests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import COOKIE_VALUE, SECRET, RedisServer, code_state, machine, pin_cpu, versions

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
RATIO_TARGET = 1.5
PREFIX = "asgibench:"


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def session_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare app, reading what a session middleware put in the scope."""
    _ = scope["session"].get("user")
    await bare_app(scope, receive, send)


def scope_for(cookie: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench.example"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("bench.example", 443),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def drop(message: dict[str, Any]) -> None:
    return None


async def first_cookie(app: App, name: str, scope: dict[str, Any]) -> str:
    """Run one request that sets a cookie; its value."""
    got: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        for key, value in message.get("headers", []):
            if key.lower() == b"set-cookie" and value.startswith(name.encode() + b"="):
                got.append(value.split(b";", 1)[0].split(b"=", 1)[1].decode())

    await app(dict(scope), receive, send)
    return got[0]


async def setup(redis_url: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One zero-argument coroutine function per case."""
    import redis.asyncio as aredis
    from starlette.middleware.sessions import SessionMiddleware

    from fixguard.asgi import FixGuardMiddleware
    from fixguard.stores.redis_async import AsyncRedisStore

    async def seeding(scope: dict[str, Any], rcv: Any, send: Any) -> None:
        await rcv()
        cookie = f"session={COOKIE_VALUE}; Path=/".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", cookie)]})
        await send({"type": "http.response.body", "body": b"ok"})

    store = AsyncRedisStore.from_url(redis_url, prefix=PREFIX)
    seeder = FixGuardMiddleware(seeding, secret_key=SECRET, store=store)
    guarded = FixGuardMiddleware(bare_app, secret_key=SECRET, store=store)
    signed = await first_cookie(seeder, "__Host-fixguard", scope_for(""))
    fg_scope = scope_for(f"__Host-fixguard={signed}")

    async def login_app(scope: dict[str, Any], rcv: Any, send: Any) -> None:
        scope["session"]["user"] = "alice"
        await bare_app(scope, rcv, send)

    peer = SessionMiddleware(session_app, secret_key=SECRET, https_only=True)
    peer_cookie = await first_cookie(
        SessionMiddleware(login_app, secret_key=SECRET), "session", scope_for("")
    )
    peer_scope = scope_for(f"session={peer_cookie}")
    bare_scope = scope_for("")
    client = aredis.Redis.from_url(redis_url)
    await client.set("asgibench:unit", COOKIE_VALUE)

    async def one_get() -> Any:
        return await client.get("asgibench:unit")

    return {
        "bare": lambda: bare_app(dict(bare_scope), receive, drop),
        "fixguard": lambda: guarded(dict(fg_scope), receive, drop),
        "starlette": lambda: peer(dict(peer_scope), receive, drop),
        "get": one_get,
    }


async def sample(call: Callable[[], Awaitable[Any]], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            await call()
        return (time.perf_counter() - start) / n * 1e6
    finally:
        gc.enable()


async def calibrate(call: Callable[[], Awaitable[Any]], sample_ms: float) -> int:
    n = 10
    while True:
        took = await sample(call, n) * n / 1e3
        if took >= sample_ms / 4 or n > 1_000_000:
            return max(10, int(n * sample_ms / max(took, 1e-3)))
        n *= 4


async def round_trips(redis: RedisServer, call: Callable[[], Awaitable[Any]], k: int) -> float:
    raw = redis.client()
    try:
        raw.config_resetstat()
        for _ in range(k):
            await call()
        stats = raw.info("commandstats")
    finally:
        raw.close()
    calls = sum(int(v["calls"]) for name, v in stats.items() if "resetstat" not in name)
    return calls / k


async def measure(redis: RedisServer, repeats: int, sample_ms: float) -> dict[str, Any]:
    cases = await setup(redis.url)
    for call in cases.values():  # warm up: connections, caches
        for _ in range(200):
            await call()
    sizes = {name: await calibrate(call, sample_ms) for name, call in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for i in range(repeats):
        for name in order if i % 2 == 0 else reversed(order):
            samples[name].append(await sample(cases[name], sizes[name]))
    overhead = {
        name: statistics.median(s - b for s, b in zip(samples[name], samples["bare"], strict=True))
        for name in ("fixguard", "starlette")
    }
    ratio = statistics.median(
        (f - b) / g for f, b, g in zip(samples["fixguard"], samples["bare"], samples["get"], strict=True)
    )
    trips = await round_trips(redis, cases["fixguard"], 200)
    return {
        "us_per_request": {name: statistics.median(s) for name, s in samples.items()},
        "overhead_us": overhead,
        "ratio_to_get": ratio,
        "round_trips": trips,
        "targets": {
            f"read-only overhead <= {RATIO_TARGET} x redis.asyncio GET": ratio <= RATIO_TARGET,
            "read-only: exactly 1 round trip": trips == 1.0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, short samples")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--sample-ms", type=float, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 25)
    sample_ms = args.sample_ms or (20.0 if args.quick else 100.0)
    try:
        import starlette  # noqa: F401
    except ImportError:
        print("Starlette is missing: pip install -e '.[asgi]'", file=sys.stderr)
        return 2
    cpu = None if args.no_pin else pin_cpu()
    with RedisServer().start(cpu) as redis:
        result = asyncio.run(measure(redis, repeats, sample_ms))
    report = {
        **result,
        "all_pass": all(result["targets"].values()),
        "config": {"repeats": repeats, "sample_ms": sample_ms, "pinned_cpu": cpu},
        "machine": machine(),
        "code": code_state(),
        "versions": versions("redis", "starlette", "hiredis"),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        per, over = report["us_per_request"], result["overhead_us"]
        rows = [
            ("bare ASGI app", per["bare"], None),
            ("fixguard, AsyncRedisStore, read", per["fixguard"], over["fixguard"]),
            ("Starlette SessionMiddleware", per["starlette"], over["starlette"]),
            ("one redis.asyncio GET", per["get"], None),
        ]
        print(f"{'case':<34}{'µs/req':>10}{'overhead µs':>14}")
        for label, us, extra in rows:
            print(f"{label:<34}{us:>10.1f}{'' if extra is None else f'{extra:.1f}':>14}")
        ratio, trips = result["ratio_to_get"], result["round_trips"]
        print(f"\nfixguard read-only overhead = {ratio:.2f} x GET; {trips:g} round trip(s)")
        for target, ok in result["targets"].items():
            print(f"  {'PASS' if ok else 'FAIL'}  {target}")
    return 0 if report["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
