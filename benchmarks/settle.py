"""What the login's settle wait costs a server: a flood of logins that fail fast, through gunicorn.

    .venv/bin/python benchmarks/settle.py                          # 3 interleaved rounds, 5 s per load
    .venv/bin/python benchmarks/settle.py --duration 3 --rounds 1 --json

A login rule freezes the session, then waits ``settle_time`` (default 20 ms)
so that requests already inside the app finish before the login can. A login
that fails fast — a wrong CSRF token, an unknown user — still waits: under a
flood of them a sync worker spends 20 ms per request where the app spends 1.
This measures it: ``POST /login`` answered ``403`` by an app that spends
about 1 ms of CPU first (``_common.failing_login_app``), through ``gunicorn
-w 2`` on loopback, loaded by ``wrk -t1 -c<connections>`` for ``--duration``
seconds per load, in ``--rounds`` interleaved rounds (reversed every other
round). Loads:

* the bare app, sync workers (the unit of the sync loads);
* FixGuard (RedisStore, default settings, rule ``POST /login``) on sessions
  holding one 120-byte app cookie: the wait;
* the same server on sessions whose jar is empty (the app deleted its
  cookie): no wait, since nothing could ride along; and on requests with no
  session cookie at all (a bot's flood): no session, no wait;
* FixGuard with ``settle_time=0`` on sessions holding a cookie: what is left
  without the wait (the freeze and the unfreeze, two round trips);
* the bare app and FixGuard (default settings, sessions holding a cookie)
  with ``-k gthread --threads <threads>``, and with ``-k gevent`` when gevent
  is installed (``pip install gevent``): there the wait sleeps a thread or a
  greenlet (gunicorn's gevent worker monkey-patches ``time.sleep``), not the
  worker process, so other requests run meanwhile.

The load is closed-loop: ``--connections`` clients, each sending its next
login when the last is answered, so throughput = connections ÷ latency until
the CPU is saturated. The wait adds 20 ms to every waiting login's latency;
with threads or greenlets it costs no throughput only when there are enough
of them, and enough clients, to keep the CPU busy meanwhile (about request
rate x 21 ms in flight): hence 128 connections and 64 threads per gthread
worker by default. With 32 of each, the gthread loads still lose to the wait.

FixGuard's Redis URL carries ``?max_connections=1024``: redis-py's pool
allows 100 connections per process by default, and a gevent worker with more
greenlets than that inside Redis calls gets ``MaxConnectionsError``, which
fixguard, failing closed, answers with 503 (seen here with 256 connections
before the limit was raised; the README says how to raise it).

After each wrk run the harness waits until the server has answered what
wrk left queued (a probe request), so a load never pays for the one before.
Each load cycles through ``4 x connections`` sessions (at least 64) made
beforehand, so no two requests in flight share one: a session frozen by one
login would make a parallel one skip the wait and the flood look cheaper than
it is. Every answer must be the app's ``403`` (a Lua script counts the
statuses); anything else fails the run. Throughput is the median over rounds;
ratios are paired (the median over rounds of the load's requests/s ÷ the bare
app's of the same worker class in the same round).

Prints requests/s, the paired ratio to the bare app and wrk's mean latency
per load. Exit status: 0 when every load got only ``403``, 1 otherwise, 2
when the run could not be made. Starts its own ``redis-server`` and
gunicorn servers on free loopback ports and stops them all at the end.
Needs ``wrk`` (see ``benchmarks/e2e.py``) and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import COOKIE_VALUE, LOGIN_WORK_S, RedisServer, code_state, machine, versions
from e2e import HOST, Server, ensure_wrk, start_server, wrk_output

#: server key -> (e2e_app kind, worker class, settle_time or None for the default)
SERVERS: dict[str, tuple[str, str, float | None]] = {
    "bare_sync": ("login_bare", "sync", None),
    "fg_sync": ("login_fixguard", "sync", None),
    "fg0_sync": ("login_fixguard", "sync", 0.0),
    "bare_gthread": ("login_bare", "gthread", None),
    "fg_gthread": ("login_fixguard", "gthread", None),
    "bare_gevent": ("login_bare", "gevent", None),
    "fg_gevent": ("login_fixguard", "gevent", None),
}
#: load key -> (label, server key, sessions: "app" cookie of the bare app, "jar", "empty" or "none")
LOADS: dict[str, tuple[str, str, str]] = {
    "bare_sync": ("bare app, sync", "bare_sync", "app"),
    "fg_sync_jar": ("FixGuard, sync, session holding a cookie", "fg_sync", "jar"),
    "fg_sync_empty": ("FixGuard, sync, session with an empty jar", "fg_sync", "empty"),
    "fg_sync_none": ("FixGuard, sync, no session cookie", "fg_sync", "none"),
    "fg0_sync_jar": ("FixGuard settle_time=0, sync, holding a cookie", "fg0_sync", "jar"),
    "bare_gthread": ("bare app, gthread", "bare_gthread", "app"),
    "fg_gthread_jar": ("FixGuard, gthread, session holding a cookie", "fg_gthread", "jar"),
    "bare_gevent": ("bare app, gevent", "bare_gevent", "app"),
    "fg_gevent_jar": ("FixGuard, gevent, session holding a cookie", "fg_gevent", "jar"),
}
BODY = "csrf_token=wrong&username=nobody&password=guess"
#: redis-py's pool holds 100 connections per process by default; a gevent worker with more
#: greenlets in Redis calls than that gets MaxConnectionsError, which fixguard answers with 503
POOL = 1024
_STATUS = re.compile(r"^status (\d+) (\d+)$", re.MULTILINE)
_LATENCY = re.compile(r"Latency\s+([\d.]+)(us|ms|s)\b")
_SOCKET_ERRORS = re.compile(r"Socket errors:.*")

# Cycles through the sessions; counts the statuses per thread and prints them at the end.
_LUA = """
local cookies = {%(cookies)s}
local body = %(body)s
local n, i = #cookies, 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function request()
  i = i %% n + 1
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  if cookies[i] ~= "" then headers["Cookie"] = cookies[i] end
  return wrk.format("POST", "/login", headers, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      io.write(string.format("status %%d %%d\\n", code, count))
    end
  end
end
"""


@dataclass
class Load:
    key: str
    label: str
    server: Server
    worker_class: str
    script: Path
    rps: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def make_sessions(server: Server, kind: str, n: int) -> list[str]:
    """``n`` Cookie header values of one kind (``""`` for no cookie), made on ``server``."""
    if kind == "app":
        return [f"session={COOKIE_VALUE}"]
    if kind == "none":
        return [""]
    cookies = []
    for _ in range(n):
        cookie = _own(server, "GET", "/fill?1", "")
        if kind == "empty":
            cookie = _own(server, "GET", "/clear", cookie)  # the app deletes its cookie: a new, empty jar
        cookies.append(cookie)
    return cookies


def _own(server: Server, method: str, path: str, cookie: str) -> str:
    status, cookies = server.request(method, path, cookie)
    own = [c for c in cookies if c.startswith("fixguard=")]
    if status != 200 or not own:
        raise SystemExit(f"FixGuard ({server.kind}) did not hand out a session for {path}: {status}")
    return own[0]


def write_script(path: Path, cookies: list[str]) -> Path:
    path.write_text(_LUA % {"cookies": ", ".join(map(json.dumps, cookies)), "body": json.dumps(BODY)})
    return path


def run_load(wrk: str, load: Load, seconds: float, connections: int) -> tuple[float, float, str]:
    """One wrk run: requests/s, mean latency in ms, and what went wrong (statuses other than 403)."""
    url = f"http://{HOST}:{load.server.port}/login"
    rps, out = wrk_output(wrk, load.server, seconds, connections, ["-s", str(load.script), url])
    statuses = {int(code): int(count) for code, count in _STATUS.findall(out)}
    problems = [f"{count} x {code}" for code, count in sorted(statuses.items()) if code != 403]
    if not statuses:
        problems.append("no response")
    errors = _SOCKET_ERRORS.search(out)
    if errors:
        problems.append(errors.group(0).strip())
    found = _LATENCY.search(out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = float(found.group(1)) * scale[found.group(2)] if found else float("nan")
    drain(load.server)
    return rps, latency, "; ".join(problems)


def drain(server: Server) -> None:
    """Wait until the server has worked off what wrk left queued when it stopped.

    Sync workers still answer every connection waiting in the listen backlog
    (128 waiting logins are seconds of work), which would slow the next load
    on the same server; a probe is answered after what queued before it.
    """
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per load (default 3)")
    parser.add_argument("--connections", type=int, default=128, help="wrk connections (default 128)")
    parser.add_argument("--threads", type=int, default=64, help="threads per gthread worker (default 64)")
    parser.add_argument("--no-gevent", action="store_true", help="skip the gevent loads")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 60 or not 0 < args.rounds <= 10:
        parser.error("--duration must be in (0, 60] and --rounds in [1, 10]")
    if not 0 < args.connections <= 256 or not 0 < args.threads <= 256:
        parser.error("--connections and --threads must be in [1, 256]")
    gevent = not args.no_gevent and importlib.util.find_spec("gevent") is not None
    servers_wanted = [k for k in SERVERS if gevent or not k.endswith("_gevent")]
    loads_wanted = [k for k, (_, server, _) in LOADS.items() if server in servers_wanted]
    n_sessions = max(64, 4 * args.connections)

    wrk = ensure_wrk()
    servers: dict[str, Server] = {}
    loads: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="fixguard-settle-") as tmp, RedisServer() as redis_server:

        def start(key: str) -> Server:
            kind, worker_class, settle = SERVERS[key]
            env = {"FIXGUARD_BENCH_PREFIX": f"fgsettle-{key}:"}
            if settle is not None:
                env["FIXGUARD_BENCH_SETTLE_TIME"] = str(settle)
            threads = args.threads if worker_class == "gthread" else 1
            url = f"{redis_server.url}?max_connections={POOL}"
            return start_server(kind, key, url, Path(tmp), worker_class, threads, env, name=key)

        try:
            for key in servers_wanted:
                servers[key] = start(key)
            for key in servers_wanted:
                for attempt in range(3):
                    try:
                        servers[key].wait_ready()
                        break
                    except SystemExit as exc:
                        # the free port was taken before gunicorn bound it (another process's
                        # ephemeral port): try another, twice at most
                        servers[key].stop()
                        if attempt == 2 or "Address already in use" not in str(exc.code):
                            raise
                        servers[key] = start(key)
            for key in loads_wanted:
                label, server_key, sessions = LOADS[key]
                cookies = make_sessions(servers[server_key], sessions, n_sessions)
                script = write_script(Path(tmp) / f"{key}.lua", cookies)
                load = Load(key, label, servers[server_key], SERVERS[server_key][1], script)
                run_load(wrk, load, 1, args.connections)  # warm-up: imports, connections, caches
                loads.append(load)
            for i in range(args.rounds):
                for load in loads if i % 2 == 0 else reversed(loads):
                    rps, latency, problems = run_load(wrk, load, args.duration, args.connections)
                    load.rps.append(rps)
                    load.latency_ms.append(latency)
                    if problems:
                        load.problems.append(problems)
        finally:
            for server in servers.values():
                server.stop()

    by_key = {load.key: load for load in loads}

    def paired(load: Load) -> float:
        """Median over rounds of this load's requests/s ÷ the bare app's (same worker class)."""
        unit = by_key[f"bare_{load.worker_class}"]
        return statistics.median(x / y for x, y in zip(load.rps, unit.rps, strict=True))

    clean = not any(load.problems for load in loads)
    result: dict[str, Any] = {
        "config": {
            "workers": 2,
            "gthread_threads": args.threads,
            "wrk_threads": 1,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "sessions_per_load": n_sessions,
            "app_login_work_ms": LOGIN_WORK_S * 1000,
            "gevent": gevent,
        },
        "machine": machine(),
        "code": code_state(),
        "versions": versions("fixguard", "gunicorn", "gevent", "redis", "hiredis"),
        "loads": {
            load.key: {
                "label": load.label,
                "worker_class": load.worker_class,
                "rps": load.rps,
                "median_rps": statistics.median(load.rps),
                "vs_bare": paired(load),
                "median_latency_ms": statistics.median(load.latency_ms),
                "problems": load.problems,
            }
            for load in loads
        },
        "all_403": clean,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(render(result))
    return 0 if clean else 1


def render(result: dict[str, Any]) -> str:
    cfg = result["config"]
    head = f"{'POST /login → 403 flood (gunicorn -w 2)':48} {'req/s':>8} {'÷ bare':>7} {'latency':>9}  rounds"
    lines = [head, "-" * len(head)]
    for row in result["loads"].values():
        per = ", ".join(f"{x:.0f}" for x in row["rps"])
        problems = f"  ({'; '.join(row['problems'])})" if row["problems"] else ""
        lines.append(
            f"{row['label']:48} {row['median_rps']:>8.0f} {row['vs_bare']:>7.3f} "
            f"{row['median_latency_ms']:>6.1f} ms  {per}{problems}"
        )
    lines.append("-" * len(head))
    gevent = "" if cfg["gevent"] else " (no gevent loads: not installed, or --no-gevent)"
    lines.append(
        f"the app spends ~{cfg['app_login_work_ms']:g} ms of CPU per login; wrk -t1 -c{cfg['connections']}, "
        f"{cfg['duration_s']:g} s per run, median of {cfg['rounds']} interleaved round(s); gthread "
        f"--threads {cfg['gthread_threads']}; {cfg['sessions_per_load']} sessions per load{gevent}"
    )
    verdict = "every answer was the app's 403" if result["all_403"] else "UNEXPECTED ANSWERS (see above)"
    lines.append(f"{verdict}; code: {result['code']}")
    m = result["machine"]
    lines.append(
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    )
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:  # a setup failure with a message (argparse's own exits carry ints)
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        status = 2
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(status)
