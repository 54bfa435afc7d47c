"""Smoke test of ``benchmarks/cluster.py --quick --json``: it runs, and counts what it claims to.

The numbers are the benchmark's to report; what must hold whatever the
machine's speed: a read-only request is one round trip through either client,
and a login waits exactly twice (its freeze and its tombstone) only when
``redis_min_replicas`` asks for it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cluster.py"


def test_cluster_benchmark_runs_and_counts() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed: apt-get install redis-server")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    rows = report["rows"]
    assert sorted(rows) == ["cluster_wait0", "cluster_wait1", "single_wait0", "single_wait1"]
    for key, row in rows.items():
        assert row["read_round_trips"] == 1, key
        assert row["login_waits"] == (2 if key.endswith("wait1") else 0), key
        assert row["read_us"] > 0 and row["login_us"] > 0, key
    assert rows["single_wait1"]["login_round_trips"] == rows["single_wait0"]["login_round_trips"] == 2
    assert report["all_pass"] is (proc.returncode == 0)
