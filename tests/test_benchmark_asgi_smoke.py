"""Smoke test of ``benchmarks/asgi.py --quick --json``: it runs, reports every case, and counts 1 round trip.

Whether the ratio target holds is the benchmark's own verdict (exit 0 or 1);
a quick run on a busy machine proves nothing either way. The round-trip count
does not depend on speed: a read-only request through FixGuardMiddleware on
an AsyncRedisStore makes exactly one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "asgi.py"


def test_quick_run_reports_every_case_and_one_round_trip() -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH: the benchmark starts its own (apt-get install it)")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--repeats", "3", "--sample-ms", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    assert sorted(report["us_per_request"]) == ["bare", "fixguard", "get", "starlette"]
    assert report["round_trips"] == 1.0
    assert report["targets"]["read-only: exactly 1 round trip"] is True
    assert proc.returncode == (0 if report["all_pass"] else 1)
