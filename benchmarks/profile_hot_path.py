"""cProfile of fixguard's hot path: the cases the targets judge, called directly as in overhead.py.

    .venv/bin/python benchmarks/profile_hot_path.py                     # read-only session, MemoryStore
    .venv/bin/python benchmarks/profile_hot_path.py --case read --store redis
    .venv/bin/python benchmarks/profile_hot_path.py --case none --calls 200000 --top 25

Prints the top functions by cumulative and by own time (cProfile's own cost
inflates small functions; read the shares, not the absolute µs). ``--store
redis`` starts a private redis-server like overhead.py does. ``--out FILE``
keeps the raw stats for snakeviz/pstats.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RedisServer, pin_cpu
from overhead import FixGuardSetup, make_environ, run_wsgi

from fixguard import MemoryStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case", choices=("none", "read", "write", "login"), default="read")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--calls", type=int, default=None, help="requests to profile")
    parser.add_argument("--top", type=int, default=18, help="rows per listing")
    parser.add_argument("--out", help="also write the raw pstats file here")
    args = parser.parse_args(argv)
    calls = args.calls or {"none": 200_000, "read": 50_000, "write": 20_000, "login": 5_000}[args.case]
    if args.store == "redis":
        calls = min(calls, 20_000)

    cpu = pin_cpu()
    server = None
    try:
        if args.store == "redis":
            from fixguard import RedisStore

            server = RedisServer().start(cpu=cpu)
            store = RedisStore.from_url(server.url, prefix="fgprof:")
        else:
            store = MemoryStore()
        setup = FixGuardSetup(store)
        app = setup.login_guard if args.case == "login" else setup.guard
        if args.case == "none":
            env = make_environ("/")
            envs = [env] * calls
        elif args.case == "read":
            envs = setup.read()(calls)
        elif args.case == "write":
            envs = setup.writes(calls)
        else:
            envs = setup.logins(calls)
        run_wsgi(app, envs[: min(1000, calls // 10)])  # warm-up
        start = time.perf_counter()
        run_wsgi(app, envs)
        plain = (time.perf_counter() - start) / calls * 1e6
        if args.case in ("write", "login"):  # each consumed its session: fresh ones for the profile
            envs = setup.writes(calls) if args.case == "write" else setup.logins(calls)
        profiler = cProfile.Profile()
        profiler.enable()
        run_wsgi(app, envs)
        profiler.disable()
    finally:
        if server is not None:
            server.stop()

    print(f"fixguard {args.store}, case {args.case!r}: {calls} requests, {plain:.2f} µs/request unprofiled")
    for key, title in (("cumulative", "cumulative time"), ("tottime", "own time")):
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key)
        stats.print_stats(args.top)
        body = buf.getvalue()
        print(f"\n== top {args.top} by {title} ==")
        print(body[body.index("   ncalls") :].rstrip())
    if args.out:
        profiler.dump_stats(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
