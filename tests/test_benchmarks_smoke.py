"""Smoke test of the benchmark harness: ``benchmarks/overhead.py --quick --json`` runs and reports.

It checks the shape of the report, not the numbers: whether fixguard meets
its targets is what the benchmark itself says (exit status 0 or 1), and a
quick run on a busy machine proves nothing either way. What must hold
whatever fixguard's speed: the run completes, every case and target is
there, and the harness's own round-trip counts are right (a bare ``GET`` is
one round trip both ways, ``INFO commandstats`` agrees with ``MONITOR``, and
redis-py's socket writes count Flask-Session's two separate commands as two),
the write and login targets judge the client-side count, and the snapshot
memory and the empty-jar login are reported. ``benchmarks/settle.py`` (when
``wrk`` is installed) runs short and shows the one thing it exists to show.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"
PEERS = ("flask_session", "beaker")
FIXGUARD_CASES = [
    *(f"fg_{s}_{c}" for s in ("memory", "redis") for c in ("none", "read", "write", "login")),
    "fg_redis_write_auth",
]
CASES = [
    "bare", "flask", "fs", "bk_redis", "bk_memory", "get", "hmac", "unsign", "ctl_get_mem",
    "fg_memory_others", *FIXGUARD_CASES, "jar_1", "jar_4", "jar_16", "hdr_1", "hdr_20", "hdr_60",
]  # fmt: skip
Report = dict[str, Any]
REDIS_CASES = [
    "fg_redis_none", "fg_redis_read", "fg_redis_write", "fg_redis_write_auth", "fg_redis_login",
    "fs", "bk_redis", "get",
]  # fmt: skip


@pytest.fixture(scope="module")
def report() -> Report:
    missing = [m for m in PEERS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"benchmark peers not installed ({', '.join(missing)}): pip install -e '.[bench]'")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH: the benchmark starts its own (apt-get install it)")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    data: Report = json.loads(proc.stdout)
    assert proc.returncode == (0 if data["all_pass"] else 1)
    return data


def test_every_case_is_timed(report: Report) -> None:
    rows = report["rows"]
    assert sorted(rows) == sorted(CASES)
    for key, row in rows.items():
        assert row["us_per_request"] > 0, key
        assert len(row["samples_us"]) == report["config"]["repeats"], key
        if key not in ("bare", "flask"):
            assert isinstance(row["overhead_us"], float), key
            assert set(row["ratios"]) == {"get", "hmac", "flask_session", "beaker_redis", "beaker_memory"}
    assert rows["fs"]["baseline"] == "flask" and rows["fg_redis_read"]["baseline"] == "bare"
    assert report["hmac_verify_us"] > 0 and report["redis_get_us"] > 0


def test_round_trips_are_counted_by_the_server(report: Report) -> None:
    rows = report["rows"]
    for key in REDIS_CASES:
        assert rows[key]["agree"] is True, (key, rows[key])
        assert rows[key]["round_trips"] == rows[key]["round_trips_monitor"], key
    assert rows["get"]["round_trips"] == 1 and rows["get"]["commands"] == {"GET": 1}
    assert rows["fs"]["commands"] == {"GET": 1, "SET": 1}  # Flask-Session 0.8 writes on every read
    for key in FIXGUARD_CASES:
        assert rows[key]["round_trips"] >= 0, key
    assert rows["fg_memory_read"]["store_calls"] is True


def test_real_round_trips_are_counted_by_the_client(report: Report) -> None:
    rows = report["rows"]
    for key in REDIS_CASES:
        real = rows[key]["real_round_trips"]
        assert isinstance(real, float), key
        # one socket write per command at most: a pipeline is fewer, never more
        assert 0 <= real <= rows[key]["round_trips"], (key, rows[key])
    assert rows["get"]["real_round_trips"] == 1 and rows["get"]["connections"] == 1
    assert rows["fs"]["real_round_trips"] == 2  # GET, then SET: two commands, two round trips
    assert rows["fg_redis_none"]["real_round_trips"] == 0
    for key in ("fg_redis_write", "fg_redis_write_auth", "fg_redis_login"):
        assert rows[key]["real_round_trips"] >= 1, key
    for key in FIXGUARD_CASES:
        if key.startswith("fg_memory"):
            assert "real_round_trips" not in rows[key], key


def test_targets_memory_and_settle_are_reported(report: Report) -> None:
    ids = [t["id"] for t in report["targets"]]
    assert sorted(set(ids)) == [f"T{i}" for i in range(1, 10)]
    for t in report["targets"]:
        assert isinstance(t["pass"], bool) and t["row"] and t["target"], t
    assert report["all_pass"] == all(t["pass"] for t in report["targets"])
    rows = report["rows"]
    judged = {(t["id"], t["row"]): t for t in report["targets"]}
    for key in ("fg_redis_write", "fg_redis_write_auth"):  # a write: ≤ 2 real round trips
        t = judged["T3", key]
        assert t["measured"] == rows[key]["real_round_trips"] and t["limit"] == 2
        assert t["pass"] == (rows[key]["real_round_trips"] <= 2)
    read, r = judged["T3", "fg_redis_read"], rows["fg_redis_read"]
    assert read["pass"] == (r["round_trips"] == r["real_round_trips"] == 1)  # exact, both ways
    login = judged["T7", "fg_redis_login"]
    assert login["measured"] == rows["fg_redis_login"]["real_round_trips"] and login["limit"] == 3
    memory = report["memory"]
    assert memory["app_cookie_bytes"] == 120
    assert memory["redis_memory_usage_bytes"] > memory["redis_value_bytes"] > 120
    assert memory["memorystore_bytes"] > 0
    snap = memory["snapshot"]
    assert snap["redis_memory_usage_bytes"] > snap["redis_value_bytes"] > 120
    assert 0 < snap["max_ttl_s"] <= snap["renew_grace_s"] == 30
    steady = snap["steady_state_bytes"]
    assert sorted(steady, key=int) == ["100", "1000"]
    for rate, size in steady.items():
        assert size == snap["redis_memory_usage_bytes"] * int(rate) * snap["renew_grace_s"]
    settle = report["settle"]
    assert settle["settle_wait_ms"] > 0.5 * settle["settle_time_s"] * 1000
    assert settle["settle_wait_empty_jar_ms"] < 0.5 * settle["settle_time_s"] * 1000  # nothing to wait for


def test_the_detection_benchmark_runs_and_reports_every_case() -> None:
    """``benchmarks/detection.py --quick --json``: every case, with detection on and off."""
    script = SCRIPT.parent / "detection.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert set(rows) == {
        "GET, live session",
        "form login (60 B)",
        "form POST, not a login (1 KiB)",
        "JSON POST, not a login (16 KiB)",
        "body over max_detect_body (70 KiB)",
    }
    for row in rows.values():
        assert row["detect_on_us"] > 0 and row["detect_off_us"] > 0


def test_the_settle_benchmark_runs_and_shows_the_wait() -> None:
    """``benchmarks/settle.py``, short: every load answered 403, and the sync wait is there.

    Two sync workers that sleep ``settle_time`` (20 ms) per waiting login serve
    at most 100 of them a second, whatever the machine; the same logins on
    sessions with an empty jar do not wait and must go faster.
    """
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH: the benchmark starts its own (apt-get install it)")
    script = SCRIPT.parent / "settle.py"
    args = ["--duration", "1", "--rounds", "1", "--connections", "8", "--threads", "8", "--no-gevent"]
    args.append("--json")
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] or done.stdout[-3000:]
    data = json.loads(done.stdout)
    loads = data["loads"]
    assert set(loads) == {
        "bare_sync", "fg_sync_jar", "fg_sync_empty", "fg_sync_none", "fg0_sync_jar",
        "bare_gthread", "fg_gthread_jar",
    }  # fmt: skip
    assert data["all_403"] is True
    for key, load in loads.items():
        assert load["median_rps"] > 0 and load["problems"] == [], key
    assert loads["fg_sync_jar"]["median_rps"] <= 2 / 0.020 * 1.1  # 2 workers, 20 ms each, 10 % slack
    assert loads["fg_sync_empty"]["median_rps"] > loads["fg_sync_jar"]["median_rps"]
