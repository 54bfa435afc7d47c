"""fixguard's per-request overhead, side by side with its peers, as ratios measured in one run.

    .venv/bin/python benchmarks/overhead.py            # full run, one table (under a minute)
    .venv/bin/python benchmarks/overhead.py --quick    # smoke run (a few seconds), same shape
    .venv/bin/python benchmarks/overhead.py --json     # machine-readable, same content

Needs ``redis-server`` on PATH and the ``bench`` extra (``pip install -e '.[bench]'``:
Flask-Session 0.8, Beaker 1.14, Flask, redis-py). Exit status: 0 when every
target of the benchmarks issue passes, 1 when one fails, 2 when the run could
not be made (no redis-server, a peer missing, bad arguments).

**Timing.** One process calls the WSGI apps directly: each case's environ is
built once (werkzeug's ``EnvironBuilder``) and shallow-copied per call; the
body is iterated and closed as a server would. A *sample* is the mean time of
N calls (N calibrated so a sample lasts ``--sample-ms``), taken with the
garbage collector paused and after a ``gc.collect()``, like ``timeit``. Every
case contributes one sample per *round*, round-robin, for ``--repeats``
rounds, so machine noise hits all cases alike. A case's
``µs/req`` is the median of its samples; its *overhead* is the median over
rounds of (case sample - baseline sample of the same round): the bare WSGI app
for fixguard and Beaker, the same Flask app without a session backend for
Flask-Session. The bare ``GET``, the HMAC verify and itsdangerous' ``unsign``
are costs on their own (no baseline). Ratios are paired too: the median over
rounds of (this case's overhead ÷ the unit's overhead in the same round) for
xGET, xHMAC, xFS (Flask-Session), xBk-r (Beaker ``ext:redis``), xBk-m (Beaker
memory); the cases a target compares run next to each other in a round, and
every other round runs in reverse order. On a VM whose speed drifts by tens of
percent between runs this keeps the ratios (what the targets judge) far
steadier than a ratio of two medians.

**One CPU.** By default the harness pins itself and its ``redis-server`` to
one CPU (``--no-pin`` leaves placement to the scheduler). On a small VM a
wake-up across cores costs several times a switch on one core, and the
scheduler flips between the two from run to run, so unpinned round trips are
bimodal (on the 2-core dev VM: ≈ 45 µs vs ≈ 140 µs per ``GET``); pinned, every
Redis case pays the same, stable price and the ratios hold between runs.

**Cases.** fixguard is measured with ``MemoryStore`` and ``RedisStore`` for a
request with no cookie; a read-only request of a session holding one 120-byte
app cookie; a session write (the app sets a new value, so the jar changes and
the session moves to a new ID, copy-on-write); with Redis also the write of a
logged-in session (it has a subject, whose index the write re-points); and a
login rotation (``POST /login``, a rule, on an existing session). A write
leaves its presented ID a snapshot and a login leaves a tombstone, so each
write or login call gets a session of its own, made beforehand (outside the
timer) and presented by its newest ID, as a browser presents it. The login
figure is taken with ``settle_time=0``; the settle wait a login pays with the
default ``settle_time``, and the none it pays on a session whose jar is empty,
are measured apart and printed below the table (``benchmarks/settle.py``
measures what the wait costs a server's throughput). Peers use their
defaults: Flask-Session 0.8 on Redis (view reads ``session["user"]``), Beaker
1.14 ``ext:redis`` and ``memory`` (app reads ``session["user"]``). Growth:
read-only requests (MemoryStore) with jars of 1, 4, 16 app cookies (one
FixGuard configured with 16 app cookie names) and Cookie headers of 1, 20, 60
cookies (fixguard's own plus others).

**Control.** ``control: GET, then fixguard memory read`` runs a bare ``GET``
and then a read-only request through FixGuard on MemoryStore, back to back:
what a Redis read-only request would cost if the Redis path added nothing to
the memory path. It comes out above GET + memory read-only measured apart,
because Python work between round trips makes each round trip dearer (caches
shared with redis-server on one CPU); the line under the table splits the
Redis read-only figure into these parts.

**HMAC-SHA256 verify** is ``hmac.compare_digest(hmac.new(key, msg,
sha256).digest(), sig)`` on a 43-byte message, the unit of the no-cookie target.

**Round trips** are counted twice over a separate, untimed batch of K
requests per case (after warm-up, so connection pools are warm), by the
server (``RT/req``) and by the client (``real``); see ``_roundtrips.py``.

*Server* (``round_trips``): Redis's own ``INFO commandstats``: ``CONFIG
RESETSTAT``, the batch, ``INFO commandstats``. commandstats
also counts the commands a Lua script runs (``redis.call('GET', …)`` inside an
``EVALSHA`` is one more ``get`` call), so the batch runs under ``MONITOR`` too,
where those inner commands carry the client tag ``lua``: round trips =
(Σ commandstats calls - the harness's own ``CONFIG RESETSTAT``) - (commands
``MONITOR`` shows from ``lua``), divided by K. An ``EVAL``/``EVALSHA`` thus
counts as one round trip, and so does a ``MULTI`` … ``EXEC`` block (its
commands are subtracted the same way); a non-transactional pipeline cannot be
told apart by the server and counts one per command. The commands ``MONITOR``
shows from the app's own connections are tallied too: a cross-check that must
agree (``round_trips_monitor``, ``agree``), and the names in the ``commands``
column (``script_inner`` in the JSON lists what the scripts ran inside).

*Client* (``real_round_trips``): the calls of redis-py's
``AbstractConnection.send_packed_command`` during the same batch, divided by
K. Every command, pipeline or ``MULTI`` block leaves through one such call
and its replies are read before the next, so this is the number of times a
request waits for Redis: a pipeline of three commands is one. (A health-check
``PING`` redis-py sends first would count as the round trip it is.) The
targets on round trips judge this count; T3 also wants the server's to be 1.

MemoryStore cases count store method calls instead, through a counting
subclass on a twin FixGuard (never the timed one); they show in parentheses.

**Memory.** Redis: ``MEMORY USAGE <key> SAMPLES 0`` of the records of sessions
holding one 120-byte app cookie (median). MemoryStore: ``tracemalloc``
growth, after ``gc.collect()``, over creating N such sessions, divided by N.
Snapshots: each of those Redis sessions then writes once; its old key now
holds a snapshot (checked), kept for ``renew_grace`` (its TTL is reported).
Their median ``MEMORY USAGE`` x writes/s x ``renew_grace`` is what snapshots
add to Redis in steady state (the live record only moves to its new key),
printed for 100 and 1,000 writes/s (``--write-rate N`` for others).

**Targets** (benchmarks issue): T1 no fixguard cookie: overhead ≤ 2 x HMAC
verify and 0 store calls; T2 read-only Redis ≤ 1.5 x bare GET; T3 round
trips of a session request with Redis: read-only exactly 1 (server and
client), a session write ≤ 2 real round trips (anonymous and logged in: the
copy-on-write issue); T4 read-only Redis ≤ 0.4 x Beaker-redis; T5
read-only Redis ≤ 0.25 x Flask-Session; T6 read-only memory ≤ 0.5 x
Beaker-memory; T7 login rotation with Redis ≤ 3 real round trips; T8 growth no
worse than linear: the per-item cost over the upper step (4→16 cookies in the
jar, 20→60 in the header) is at most 1.5 x that over the lower step (1→4,
1→20, plus two standard errors of its median over the rounds) + 0.05 µs
(quadratic growth would give about 4 x); T9 < 400 bytes per session in Redis.
The end-to-end throughput target is measured by ``benchmarks/e2e.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import hmac
import itertools
import json
import secrets
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    COOKIE_VALUE,
    SECRET,
    RedisServer,
    bare_app,
    beaker_app,
    code_state,
    flask_app,
    machine,
    pin_cpu,
    versions,
)
from _roundtrips import RoundTripCounter

from fixguard import FixGuard, MemoryStore

Env = dict[str, Any]

FULL = {"repeats": 11, "sample_ms": 20.0, "count": 50, "mem_sessions": 2000, "settle_calls": 5}
QUICK = {"repeats": 3, "sample_ms": 2.0, "count": 10, "mem_sessions": 200, "settle_calls": 2}
PREPARED_MAX_CALLS = 600  # write and login samples consume one prepared session per call
WRITE_RATES = (100, 1000)  # writes/s for which the snapshots' steady-state memory is printed
JAR_SIZES = (1, 4, 16)
HEADER_SIZES = (1, 20, 60)
APP_COOKIES_16 = ("session", *(f"c{i}" for i in range(1, 16)))


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def make_environ(path: str, method: str = "GET", cookie: str | None = None, query: str = "") -> Env:
    """A realistic environ, built once per case (werkzeug's EnvironBuilder)."""
    from werkzeug.test import EnvironBuilder

    headers = {"Host": "bench.local", "User-Agent": "fixguard-bench/1", "Accept": "*/*"}
    if cookie:
        headers["Cookie"] = cookie
    builder = EnvironBuilder(path=path, method=method, headers=headers, query_string=query)
    try:
        env: Env = builder.get_environ()
    finally:
        builder.close()
    env["REMOTE_ADDR"] = "127.0.0.1"
    return env


def run_wsgi(app: Any, envs: Iterable[Env]) -> None:
    """Call ``app`` once per environ (copied), consuming and closing the body like a server."""
    sr = _start_response
    for env in envs:
        body = app(env.copy(), sr)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()


def set_cookies(app: Any, env: Env) -> list[str]:
    """Call ``app`` once and return the ``name=value`` of every Set-Cookie it sent."""
    captured: list[tuple[str, str]] = []

    def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.extend(headers)

    body = app(env.copy(), sr)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return [v.split(";", 1)[0].strip() for k, v in captured if k.lower() == "set-cookie"]


# -- fixguard set-ups ---------------------------------------------------------------------


_subjects = itertools.count()


def _login_as_app(environ: Env, start_response: Callable[..., Any]) -> Iterator[bytes]:
    """Setup only: a login (``POST /login?<subject>``) that names its user, for logged-in sessions."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", f"session={COOKIE_VALUE}; Path=/"),
            ("Fixguard-Subject", environ["QUERY_STRING"]),
        ],
    )
    yield b"ok"


class FixGuardSetup:
    """FixGuard around the bare app (default settings, and settle_time=0 for logins), and environs.

    Only the login case may run with ``settle_time=0``: a request of a session
    that is slower than ``settle_time`` re-reads its record (one more store
    call), so 0 would charge every other case a re-check it never pays.

    The write and login cases consume their session: after a write the
    presented ID is a snapshot (copy-on-write), after a login a tombstone. So
    each of their calls gets a session of its own, made beforehand (outside
    the timer) and presented by its newest ID, as a browser would.
    """

    def __init__(self, store: Any, app_cookies: tuple[str, ...] = ("session",)):
        self.store = store
        options: dict[str, Any] = {
            "secret_key": SECRET,
            "secure": False,
            "store": store,
            "app_cookies": app_cookies,
        }
        #: default settings (settle_time 0.02 s): what every non-login case runs through
        self.guard = FixGuard(bare_app, **options)
        #: the same store and key with settle_time=0, for the login figure (its wait is reported apart)
        self.login_guard = FixGuard(bare_app, **options, settle_time=0)
        #: the same store and key around a login that names its user: makes logged-in sessions
        self.login_as = FixGuard(_login_as_app, **options, settle_time=0)

    def session(self, fill: int = 1) -> str:
        """A new session whose jar holds ``fill`` 120-byte app cookies: ``fixguard=<signed id>``."""
        return self._own_cookie(self.guard, make_environ("/fill", query=str(fill)))

    def logged_in(self) -> str:
        """A new logged-in session (its own subject, so a subject index) holding one app cookie."""
        return self._own_cookie(self.login_as, make_environ("/login", "POST", query=f"u{next(_subjects)}"))

    def empty_jar(self) -> str:
        """A session whose jar the app emptied (it deleted its cookie): its newest ID."""
        return self._own_cookie(self.guard, make_environ("/clear", cookie=self.session()))

    @staticmethod
    def _own_cookie(app: Any, env: Env) -> str:
        for pair in set_cookies(app, env):
            if pair.startswith("fixguard="):
                return pair
        raise RuntimeError("fixguard did not hand out a session")

    def none(self, n: int) -> list[Env]:
        env = make_environ("/")
        return [env] * n

    def read(self, fill: int = 1, others: int = 0) -> Callable[[int], list[Env]]:
        cookies = [self.session(fill)]
        cookies += [f"pref{i}=GA1.2.{1000000000 + i}.{1700000000 + i}" for i in range(others)]
        env = make_environ("/", cookie="; ".join(cookies))
        return lambda n: [env] * n

    def writes(self, n: int) -> list[Env]:
        """n writes (the app sets a new value), each on a fresh session's newest ID."""
        return [make_environ("/write", cookie=self.session()) for _ in range(n)]

    def auth_writes(self, n: int) -> list[Env]:
        """n writes, each on a fresh logged-in session's newest ID."""
        return [make_environ("/write", cookie=self.logged_in()) for _ in range(n)]

    def logins(self, n: int, empty: bool = False) -> list[Env]:
        """n ``POST /login``, each on a fresh session (holding one app cookie, or an emptied jar)."""
        make = self.empty_jar if empty else self.session
        return [make_environ("/login", "POST", cookie=make()) for _ in range(n)]


class CountingMemoryStore(MemoryStore):
    """MemoryStore that counts calls of its public methods (memory cases' store-calls column only).

    Every public method is counted, including any a later version adds, by
    wrapping what attribute access returns; calls between the store's own
    methods go through ``self`` too, which is fine for the request paths timed here.
    """

    calls: Counter[str]

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "calls", Counter())

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or name == "calls" or not callable(attr):
            return attr
        calls = super().__getattribute__("calls")

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return attr(*args, **kwargs)

        return counted


# -- cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    app: Any = None  # a WSGI app, or None for ``op``
    envs: Callable[[int], list[Env]] | None = None
    op: Callable[[int], None] | None = None  # n plain operations (GET, HMAC)
    baseline: str | None = None  # key of the case subtracted for the overhead; None: absolute
    count: Callable[[int], dict[str, Any]] | None = None  # round trips / store calls over k calls
    max_calls: int = 100_000
    calls: int = 0
    samples: list[float] = field(default_factory=list)
    trips: dict[str, Any] | None = None

    def sample(self, n: int) -> float:
        """Mean µs per call over n calls (environs prepared outside the timer)."""
        envs = self.envs(n) if self.envs is not None else None
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            if envs is not None:
                run_wsgi(self.app, envs)
            else:
                assert self.op is not None
                self.op(n)
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        return elapsed / n * 1e6


def redis_count(
    counter: RoundTripCounter, case_app: Any, envs: Callable[[int], list[Env]]
) -> Callable[[int], dict[str, Any]]:
    def count(k: int) -> dict[str, Any]:
        prepared = envs(k)
        return counter.measure(lambda: run_wsgi(case_app, prepared), k)

    return count


def memory_count(
    twin: FixGuardSetup, envs: Callable[[int], list[Env]], login: bool = False
) -> Callable[[int], dict[str, Any]]:
    """Store calls of a memory case, counted on a twin FixGuard with a counting store."""
    store = twin.store
    assert isinstance(store, CountingMemoryStore)
    app = twin.login_guard if login else twin.guard

    def count(k: int) -> dict[str, Any]:
        prepared = envs(k)
        store.calls.clear()
        run_wsgi(app, prepared)
        calls = dict(store.calls)
        return {
            "round_trips": sum(calls.values()) / k,
            "commands": {n: c / k for n, c in calls.items()},
            "script_inner": {},
            "store_calls": True,
        }

    return count


def build_cases(server: RedisServer, counter: RoundTripCounter) -> tuple[list[Case], dict[str, Any]]:
    import redis

    from fixguard import RedisStore

    keep: dict[str, Any] = {}  # clients to close at the end
    bare_env = make_environ("/")
    cases: list[Case] = [Case("bare", "bare WSGI app", bare_app, lambda n: [bare_env] * n)]

    def fixguard_cases(kind: str, store: Any, twin_store: Any | None) -> None:
        s = FixGuardSetup(store)
        t = FixGuardSetup(twin_store) if twin_store is not None else None
        variants: list[tuple[str, str, Callable[[FixGuardSetup], Callable[[int], list[Env]]], int]] = [
            ("none", "no cookie", lambda x: x.none, 100_000),
            ("read", "read-only session", lambda x: x.read(), 100_000),
            ("write", "session write", lambda x: x.writes, PREPARED_MAX_CALLS),
            ("login", "login rotation (settle 0)", lambda x: x.logins, PREPARED_MAX_CALLS),
        ]
        if kind == "memory":
            variants.insert(1, ("others", "only 2 other cookies", _others, 100_000))
        else:  # a logged-in session's write also re-points its subject index, in the same pipeline
            auth = ("write_auth", "session write, logged in", lambda x: x.auth_writes, PREPARED_MAX_CALLS)
            variants.insert(3, auth)
        for key, what, envs_of, max_calls in variants:
            envs = envs_of(s)
            app = s.login_guard if key == "login" else s.guard
            if kind == "redis":
                count = redis_count(counter, app, envs)
            else:
                assert t is not None
                count = memory_count(t, envs_of(t), login=key == "login")
            cases.append(
                Case(
                    f"fg_{kind}_{key}",
                    f"fixguard {kind}, {what}",
                    app,
                    envs,
                    baseline="bare",
                    count=count,
                    max_calls=max_calls,
                )
            )

    fixguard_cases("memory", MemoryStore(), CountingMemoryStore())
    redis_store = RedisStore.from_url(server.url, prefix="fgbench:")
    keep["redis_store"] = redis_store
    fixguard_cases("redis", redis_store, None)

    # peers
    bare_flask = flask_app(None)
    fs_client = redis.Redis.from_url(server.url)
    keep["fs_client"] = fs_client
    fs = flask_app(fs_client)
    fs_cookie = next(p for p in set_cookies(fs, make_environ("/login", "POST")) if p.startswith("session="))
    fs_env = make_environ("/", cookie=fs_cookie)
    cases.append(Case("flask", "bare Flask app (same view)", bare_flask, lambda n: [fs_env] * n))
    cases.append(
        Case(
            "fs",
            "Flask-Session 0.8 redis, read (+write)",
            fs,
            lambda n: [fs_env] * n,
            baseline="flask",
            count=redis_count(counter, fs, lambda n: [fs_env] * n),
        )
    )
    for kind, key, label in (
        ("ext:redis", "bk_redis", "Beaker 1.14 ext:redis, read (+write)"),
        ("memory", "bk_memory", "Beaker 1.14 memory, read (+write)"),
    ):
        app = beaker_app(kind, server.url if kind == "ext:redis" else None)
        cookie = next(p for p in set_cookies(app, make_environ("/login", "POST")) if p.startswith("beaker="))
        env = make_environ("/", cookie=cookie)
        envs = (lambda e: lambda n: [e] * n)(env)
        count = redis_count(counter, app, envs) if kind == "ext:redis" else None
        cases.append(Case(key, label, app, envs, baseline="bare", count=count))

    # units
    get_client = redis.Redis.from_url(server.url)
    keep["get_client"] = get_client
    sample_value = redis_store.client.get(redis_store.client.keys("fgbench:*")[0]) or b"x" * 200
    get_client.set("bench:get", sample_value)

    def get_op(n: int) -> None:
        g = get_client.get
        for _ in range(n):
            g("bench:get")

    def get_count(k: int) -> dict[str, Any]:
        return counter.measure(lambda: get_op(k), k)

    cases.append(Case("get", "redis-py GET alone", op=get_op, count=get_count))

    # control: a bare GET, then a read-only request through FixGuard on MemoryStore; what a
    # Redis read-only request costs if fixguard's Redis path added nothing to its memory path
    ctl = FixGuardSetup(MemoryStore())
    ctl_env = ctl.read()(1)[0]

    def control_op(n: int) -> None:
        g, guard, sr = get_client.get, ctl.guard, _start_response
        for _ in range(n):
            g("bench:get")
            body = guard(ctl_env.copy(), sr)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    cases.append(Case("ctl_get_mem", "control: GET, then fixguard memory read", op=control_op))

    key, msg = secrets.token_bytes(32), secrets.token_urlsafe(32).encode()
    sig = hmac.new(key, msg, hashlib.sha256).digest()

    def hmac_op(n: int) -> None:
        new, cmp, sha = hmac.new, hmac.compare_digest, hashlib.sha256
        for _ in range(n):
            cmp(new(key, msg, sha).digest(), sig)

    cases.append(Case("hmac", "HMAC-SHA256 verify (hmac.new)", op=hmac_op))

    from itsdangerous import Signer

    signer = Signer(hashlib.sha256(key).digest(), key_derivation="none", digest_method=hashlib.sha256)
    signed = signer.sign(secrets.token_urlsafe(32))

    def unsign_op(n: int) -> None:
        unsign = signer.unsign
        for _ in range(n):
            unsign(signed)

    cases.append(Case("unsign", "itsdangerous Signer.unsign (info)", op=unsign_op))

    # growth (MemoryStore, read-only)
    jar_setup = FixGuardSetup(MemoryStore(), APP_COOKIES_16)
    for n in JAR_SIZES:
        cases.append(
            Case(
                f"jar_{n}",
                f"growth: jar of {n} app cookie{'s' * (n > 1)}",
                jar_setup.guard,
                jar_setup.read(fill=n),
                baseline="bare",
            )
        )
    hdr_setup = FixGuardSetup(MemoryStore())
    for n in HEADER_SIZES:
        cases.append(
            Case(
                f"hdr_{n}",
                f"growth: Cookie header of {n} cookie{'s' * (n > 1)}",
                hdr_setup.guard,
                hdr_setup.read(fill=1, others=n - 1),
                baseline="bare",
            )
        )
    return cases, keep


def _others(setup: FixGuardSetup) -> Callable[[int], list[Env]]:
    env = make_environ("/", cookie="theme=dark; lang=en")
    return lambda n: [env] * n


# -- running --------------------------------------------------------------------------------


def calibrate(case: Case, sample_ms: float) -> None:
    """Warm the case up and choose the calls per sample so that one lasts about ``sample_ms``."""
    warm = min(case.max_calls, 20)
    case.sample(warm)
    per_call = case.sample(warm)
    case.calls = int(max(10, min(case.max_calls, sample_ms * 1000 / max(per_call, 0.05))))


def settle_wait(calls: int) -> dict[str, Any]:
    """What the login's settle wait costs with the default settle_time (MemoryStore).

    A login on a session holding an app cookie waits; one on a session whose
    jar is empty (nothing could ride along) does not. ``benchmarks/settle.py``
    measures what the wait costs a server's throughput.
    """
    setup = FixGuardSetup(MemoryStore())
    default = setup.guard.settings.settle_time
    runs = {
        "settle_0": (setup.login_guard, setup.logins),
        "default": (setup.guard, setup.logins),
        "default_empty_jar": (setup.guard, lambda n: setup.logins(n, empty=True)),
    }
    timings = {}
    for name, (app, envs) in runs.items():
        case = Case("settle", "", app, envs)
        case.sample(2)
        timings[name] = statistics.median(case.sample(1) for _ in range(calls))
    return {
        "settle_time_s": default,
        "login_us_settle_0": round(timings["settle_0"], 2),
        "login_us_default": round(timings["default"], 2),
        "login_us_default_empty_jar": round(timings["default_empty_jar"], 2),
        "settle_wait_ms": round((timings["default"] - timings["settle_0"]) / 1000, 3),
        "settle_wait_empty_jar_ms": round((timings["default_empty_jar"] - timings["settle_0"]) / 1000, 3),
    }


def memory_per_session(server: RedisServer, n_memory: int, rates: tuple[int, ...]) -> dict[str, Any]:
    """Bytes one session holding one 120-byte app cookie costs in Redis and in MemoryStore.

    And the snapshots: each session then writes once (copy-on-write), which
    leaves its old key holding a snapshot for ``renew_grace``; their ``MEMORY
    USAGE`` times writes/s times the grace is what snapshots add in steady
    state (the session's live record only moves to its new key).
    """
    from fixguard import RedisStore
    from fixguard.record import SNAPSHOT, guard_of

    store = RedisStore.from_url(server.url, prefix="fgmem:")
    try:
        setup = FixGuardSetup(store)
        cookies = [setup.session() for _ in range(20)]
        client = store.client
        keys = list(client.scan_iter(match="fgmem:*"))
        usage = [int(client.memory_usage(k, samples=0)) for k in keys]
        strlen = [int(client.strlen(k)) for k in keys]
        run_wsgi(setup.guard, [make_environ("/write", cookie=c) for c in cookies])
        snapshots = [k for k in keys if guard_of((client.get(k) or b"").decode())[1:2] == SNAPSHOT]
        if len(snapshots) != len(keys):
            raise RuntimeError(f"{len(keys) - len(snapshots)} of {len(keys)} writes left no snapshot")
        snap_usage = [int(client.memory_usage(k, samples=0)) for k in snapshots]
        snap_strlen = [int(client.strlen(k)) for k in snapshots]
        snap_ttl = max(int(client.pttl(k)) for k in snapshots) / 1000
    finally:
        store.close()
    grace = setup.guard.settings.renew_grace
    snapshot_bytes = statistics.median_low(snap_usage)

    mem = FixGuardSetup(MemoryStore())
    for _ in range(50):
        mem.session()  # warm caches, intern strings, grow the dict past its first sizes
    gc.collect()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n_memory):
            mem.session()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {
        "app_cookie_bytes": len(COOKIE_VALUE),
        "redis_memory_usage_bytes": statistics.median_low(usage),
        "redis_value_bytes": statistics.median_low(strlen),
        "memorystore_bytes": round((after - before) / n_memory, 1),
        "memorystore_sessions": n_memory,
        "snapshot": {
            "redis_memory_usage_bytes": snapshot_bytes,
            "redis_value_bytes": statistics.median_low(snap_strlen),
            "renew_grace_s": grace,
            "max_ttl_s": snap_ttl,
            "steady_state_bytes": {str(r): snapshot_bytes * r * grace for r in rates},
        },
    }


def summarise(cases: list[Case]) -> dict[str, dict[str, Any]]:
    by_key = {c.key: c for c in cases}
    per_round: dict[str, list[float]] = {}  # overhead of each round, for paired ratios
    rows: dict[str, dict[str, Any]] = {}
    for c in cases:
        row: dict[str, Any] = {
            "case": c.label,
            "us_per_request": statistics.median(c.samples),
            "samples_us": [round(s, 3) for s in c.samples],
            "calls_per_sample": c.calls,
            "baseline": c.baseline,
        }
        if c.baseline is not None:
            diffs = [a - b for a, b in zip(c.samples, by_key[c.baseline].samples, strict=True)]
        elif c.op is not None:
            diffs = list(c.samples)
        else:
            diffs = []
        if diffs:
            per_round[c.key] = diffs
            row["overhead_us"] = statistics.median(diffs)
            row["overhead_mad_us"] = statistics.median(abs(d - row["overhead_us"]) for d in diffs)
        else:
            row["overhead_us"] = None
        if c.trips is not None:
            row.update(c.trips)
        rows[c.key] = row
    units = {
        "get": "get",
        "hmac": "hmac",
        "flask_session": "fs",
        "beaker_redis": "bk_redis",
        "beaker_memory": "bk_memory",
    }
    for key, row in rows.items():
        mine = per_round.get(key)
        row["ratios"] = {
            name: None if mine is None else _paired_ratio(mine, per_round[unit])
            for name, unit in units.items()
        }
    rows["_per_round"] = per_round  # type: ignore[assignment]  # removed before output
    return rows


def _paired_ratio(mine: list[float], unit: list[float]) -> float | None:
    """Median over rounds of (my overhead ÷ the unit's overhead in the same round)."""
    ratios = [a / b for a, b in zip(mine, unit, strict=True) if b > 0]
    return statistics.median(ratios) if ratios else None


def growth_check(rows: dict[str, Any], prefix: str, sizes: tuple[int, int, int]) -> dict[str, Any]:
    """Per-item cost of the upper step against the lower step (see T8 in the module docstring).

    Both steps are taken per round (the three sizes run back to back) and their
    medians compared. The lower step gets an allowance of 2 standard errors of
    its median (≈ 1.86 x MAD / √rounds), so that a noisy short run cannot fail
    a linear series.
    """
    a, b, c = sizes
    oa, ob, oc = (rows["_per_round"][f"{prefix}_{n}"] for n in sizes)
    lowers = [(y - x) / (b - a) for x, y in zip(oa, ob, strict=True)]
    uppers = [(z - y) / (c - b) for y, z in zip(ob, oc, strict=True)]
    lower, upper = statistics.median(lowers), statistics.median(uppers)
    mad = statistics.median(abs(x - lower) for x in lowers)
    noise = 2 * 1.86 * mad / len(lowers) ** 0.5
    limit = 1.5 * max(lower + noise, 0.0) + 0.05
    return {
        "per_item_lower_us": lower,
        "per_item_upper_us": upper,
        "noise_allowance_us": noise,
        "limit_us": limit,
        "pass": upper <= limit,
    }


def evaluate(rows: dict[str, dict[str, Any]], memory: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def target(tid: str, row: str, text: str, measured: float, limit: float, ok: bool) -> None:
        out.append({"id": tid, "row": row, "target": text, "measured": measured, "limit": limit, "pass": ok})

    for kind in ("memory", "redis"):
        r = rows[f"fg_{kind}_none"]
        x = r["ratios"]["hmac"]
        target(
            "T1",
            f"fg_{kind}_none",
            f"no cookie ({kind}): overhead ≤ 2 x HMAC verify, 0 store calls",
            x,
            2.0,
            x <= 2.0 and r["round_trips"] == 0 and not r.get("real_round_trips"),
        )
    r = rows["fg_redis_read"]
    x = r["ratios"]["get"]
    target("T2", "fg_redis_read", "read-only, Redis: overhead ≤ 1.5 x bare GET", x, 1.5, x <= 1.5)
    target(
        "T3",
        "fg_redis_read",
        "read-only, Redis: exactly 1 round trip (server and client)",
        r["real_round_trips"],
        1,
        r["round_trips"] == 1 and r["real_round_trips"] == 1,
    )
    for key, what in (("fg_redis_write", "session write"), ("fg_redis_write_auth", "logged-in write")):
        w = rows[key]["real_round_trips"]
        target("T3", key, f"{what}, Redis: ≤ 2 real round trips", w, 2, w <= 2)
    x = r["ratios"]["beaker_redis"]
    target("T4", "fg_redis_read", "read-only, Redis: ≤ 0.4 x Beaker ext:redis overhead", x, 0.4, x <= 0.4)
    x = r["ratios"]["flask_session"]
    target("T5", "fg_redis_read", "read-only, Redis: ≤ 0.25 x Flask-Session overhead", x, 0.25, x <= 0.25)
    x = rows["fg_memory_read"]["ratios"]["beaker_memory"]
    target("T6", "fg_memory_read", "read-only, memory: ≤ 0.5 x Beaker memory overhead", x, 0.5, x <= 0.5)
    r = rows["fg_redis_login"]
    target(
        "T7",
        "fg_redis_login",
        "login rotation, Redis: ≤ 3 real round trips",
        r["real_round_trips"],
        3,
        r["real_round_trips"] <= 3,
    )
    for prefix, sizes, what in (
        ("jar", JAR_SIZES, "jar 1/4/16"),
        ("hdr", HEADER_SIZES, "Cookie header 1/20/60"),
    ):
        g = growth_check(rows, prefix, sizes)
        rows[f"{prefix}_{sizes[-1]}"]["growth"] = g
        target(
            "T8",
            f"{prefix}_{sizes[-1]}",
            f"growth ({what}): per-item cost of the upper step ≤ 1.5 x the lower step + 0.05 µs",
            g["per_item_upper_us"],
            g["limit_us"],
            g["pass"],
        )
    target(
        "T9",
        "mem_redis",
        "memory: < 400 bytes per session in Redis (MEMORY USAGE)",
        memory["redis_memory_usage_bytes"],
        400,
        memory["redis_memory_usage_bytes"] < 400,
    )
    return out


# -- output ---------------------------------------------------------------------------------

#: Order of the samples within a round (reversed every other round, to cancel drift): what a
#: target compares runs side by side, so a change in machine speed hits both alike.
EXEC_ORDER = (
    "bare",
    "fg_memory_none",
    "hmac",
    "fg_redis_none",
    "fg_memory_others",
    "unsign",
    "fg_memory_read",
    "bk_memory",
    "jar_1",
    "jar_4",
    "jar_16",
    "hdr_1",
    "hdr_20",
    "hdr_60",
    "fg_memory_write",
    "fg_memory_login",
    "get",
    "fg_redis_read",
    "ctl_get_mem",
    "bk_redis",
    "flask",
    "fs",
    "fg_redis_write",
    "fg_redis_write_auth",
    "fg_redis_login",
)
TARGET_IDS = ("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9")
RATIO_COLS = (
    ("xGET", "get"),
    ("xHMAC", "hmac"),
    ("xFS", "flask_session"),
    ("xBk-r", "beaker_redis"),
    ("xBk-m", "beaker_memory"),
)


def _num(x: float | None, width: int, digits: int = 2) -> str:
    return f"{x:>{width}.{digits}f}" if x is not None else f"{'—':>{width}}"


def _commands(row: dict[str, Any]) -> str:
    cmds = row.get("commands")
    if cmds is None:
        return ""
    parts = []
    for name, per in cmds.items():
        parts.append(name if abs(per - 1) < 1e-9 else f"{per:g}x{name}")
    text = "+".join(parts) or "none"
    if row.get("store_calls"):
        text = f"({text})"
    return text


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def render(result: dict[str, Any]) -> str:
    rows, targets, memory = result["rows"], result["targets"], result["memory"]
    by_row: dict[str, dict[str, list[bool]]] = {}
    for t in targets:
        by_row.setdefault(t["row"], {}).setdefault(t["id"], []).append(t["pass"])
    head = (
        f"{'case':44} {'µs/req':>7} {'overhead':>8} "
        + " ".join(f"{h:>6}" for h, _ in RATIO_COLS)
        + f" {'RT/req':>6} {'real':>5}  {'commands':22} "
        + " ".join(f"{t:>4}" for t in TARGET_IDS)
    )
    lines = [head, "-" * len(head)]

    def cells(key: str) -> str:
        marks = by_row.get(key, {})
        return " ".join(
            f"{('PASS' if all(marks[t]) else 'FAIL') if t in marks else '':>4}" for t in TARGET_IDS
        )

    for key, row in rows.items():
        ratios = " ".join(
            _num(row["ratios"][r], 6) if row["overhead_us"] is not None else f"{'':>6}" for _, r in RATIO_COLS
        )
        rt, real = row.get("round_trips"), row.get("real_round_trips")
        trips = " ".join(_num(x, w) if x is not None else " " * w for x, w in ((rt, 6), (real, 5)))
        lines.append(
            f"{row['case'][:44]:44} {row['us_per_request']:>7.2f} {_num(row['overhead_us'], 8)} {ratios} "
            f"{trips}  {_commands(row)[:22]:22} {cells(key)}"
        )
    blank = " " * (7 + 1 + 8 + 1 + 6 * 5 + 4 + 1 + 6 + 1 + 5 + 2 + 22 + 1)
    lines.append(
        f"{'memory/session, Redis MEMORY USAGE: ' + str(memory['redis_memory_usage_bytes']) + ' B':44}"
        f"{blank}{cells('mem_redis')}"
    )
    lines.append(
        f"{'memory/session, MemoryStore tracemalloc: ' + str(round(memory['memorystore_bytes'])) + ' B':44}"
    )
    lines.append("-" * len(head))
    s = result["settle"]
    lines.append(
        f"login settle wait (default settle_time={s['settle_time_s']} s), excluded above: "
        f"+{s['settle_wait_ms']:.2f} ms per login-rule request "
        f"({s['login_us_default']:.0f} µs vs {s['login_us_settle_0']:.0f} µs); on a session whose jar is "
        f"empty {s['settle_wait_empty_jar_ms']:+.2f} ms ({s['login_us_default_empty_jar']:.0f} µs); "
        f"throughput: benchmarks/settle.py"
    )
    lines.append(
        f"memory: one 120-byte app cookie; Redis value {memory['redis_value_bytes']} B, "
        f"MEMORY USAGE {memory['redis_memory_usage_bytes']} B; MemoryStore {memory['memorystore_bytes']} B "
        f"(over {memory['memorystore_sessions']} sessions)"
    )
    snap = memory["snapshot"]
    steady = ", ".join(
        f"{int(rate):,} writes/s → {_size(size)}" for rate, size in snap["steady_state_bytes"].items()
    )
    lines.append(
        f"snapshots: a write leaves the old ID a snapshot for renew_grace={snap['renew_grace_s']:g} s "
        f"(TTL seen ≤ {snap['max_ttl_s']:.1f} s): MEMORY USAGE {snap['redis_memory_usage_bytes']} B each "
        f"(value {snap['redis_value_bytes']} B); steady state = bytes x writes/s x grace: {steady}"
    )
    r = {k: rows[k]["overhead_us"] for k in ("fg_redis_read", "get", "fg_memory_read", "ctl_get_mem")}
    lines.append(
        f"Redis read-only {r['fg_redis_read']:.1f} µs = control {r['ctl_get_mem']:.1f} µs "
        f"{r['fg_redis_read'] - r['ctl_get_mem']:+.1f}; control = GET alone {r['get']:.1f} + memory "
        f"read-only {r['fg_memory_read']:.1f} + {r['ctl_get_mem'] - r['get'] - r['fg_memory_read']:.1f} µs "
        f"that Python work between round trips adds to them (shared CPU caches)"
    )
    for t in targets:
        if t["id"] == "T8":
            g = rows[t["row"]]["growth"]
            detail = (
                f"per item {g['per_item_lower_us']:.3f} → {g['per_item_upper_us']:.3f} µs "
                f"(limit {g['limit_us']:.3f})"
            )
        else:
            detail = f"measured {t['measured']:.3g}, limit {t['limit']:g}"
        lines.append(f"  {t['id']} {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {detail}")
    lines.append("  e2e (gunicorn + wrk, wrapped ≥ 0.6 x bare): run benchmarks/e2e.py")
    cfg = result["config"]
    disagree = [k for k, r in rows.items() if r.get("agree") is False]
    monitor = "disagrees on " + ", ".join(disagree) if disagree else "agrees"
    pinned = "not pinned" if cfg["pinned_cpu"] is None else f"pinned to CPU {cfg['pinned_cpu']}"
    lines.append(
        f"{sum(t['pass'] for t in targets)}/{len(targets)} targets PASS · medians of {cfg['repeats']} "
        f"interleaved rounds, ~{cfg['sample_ms']:g} ms per sample · round trips over {cfg['count']} requests "
        f"(RT/req: commandstats - Lua-inner, MONITOR {monitor}; real: redis-py socket writes) · {pinned}"
    )
    m = result["machine"]
    lines.append(f"code: {result['code']}")
    lines.append(
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, redis-server {result['redis_server']}, "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few, short samples)")
    parser.add_argument("--repeats", type=int, help="rounds of interleaved samples")
    parser.add_argument("--sample-ms", type=float, help="target duration of one sample")
    parser.add_argument(
        "--write-rate",
        type=int,
        action="append",
        metavar="N",
        help=f"writes/s to price the snapshots' steady-state memory at (repeatable; default {WRITE_RATES})",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the scheduler place this process and redis-server (default: one shared CPU)",
    )
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeats:
        cfg["repeats"] = args.repeats
    if args.sample_ms:
        cfg["sample_ms"] = args.sample_ms
    if args.write_rate and min(args.write_rate) <= 0:
        parser.error("--write-rate must be a positive number of writes per second")
    cfg["write_rates"] = tuple(args.write_rate or WRITE_RATES)

    started = time.monotonic()
    cfg["pinned_cpu"] = None if args.no_pin else pin_cpu()
    server = RedisServer().start(cpu=cfg["pinned_cpu"])
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop)
        counter = RoundTripCounter(server)
        cases, keep = build_cases(server, counter)
        try:
            for case in cases:
                calibrate(case, cfg["sample_ms"])
            for case in cases:
                if case.count is not None:
                    case.trips = case.count(cfg["count"])
            by_key = {c.key: c for c in cases}
            assert sorted(EXEC_ORDER) == sorted(by_key), "EXEC_ORDER must list every case once"
            order = [by_key[k] for k in EXEC_ORDER]
            for i in range(cfg["repeats"]):
                for case in order if i % 2 == 0 else reversed(order):
                    case.samples.append(case.sample(case.calls))
            settle = settle_wait(cfg["settle_calls"])
            memory = memory_per_session(server, cfg["mem_sessions"], cfg["write_rates"])
            redis_version = server.version()
        finally:
            counter.close()
            for client in keep.values():
                with contextlib.suppress(Exception):
                    client.close()

    rows = summarise(cases)
    targets = evaluate(rows, memory)
    rows.pop("_per_round")
    result: dict[str, Any] = {
        "config": {**cfg, "quick": args.quick},
        "machine": machine(),
        "code": code_state(),
        "redis_server": redis_version,
        "versions": versions(
            "fixguard", "Flask", "Flask-Session", "Beaker", "redis", "hiredis", "Werkzeug", "itsdangerous"
        ),
        "hmac_verify_us": rows["hmac"]["overhead_us"],
        "redis_get_us": rows["get"]["overhead_us"],
        "rows": rows,
        "targets": targets,
        "memory": memory,
        "settle": settle,
        "all_pass": all(t["pass"] for t in targets),
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(render(result))
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:  # a setup failure with a message (argparse's own exits carry ints)
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        status = 2
    sys.exit(status)
