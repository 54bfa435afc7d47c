"""``examples/gunicorn_observed.conf.py``: the README's recipes for events and metrics, under real gunicorn.

Two sync workers share the tests' redis-server in front of the unmodified
vulnerable example app; the attack is played over loopback with ``requests``.
The blocked fixation must show up in gunicorn's error log (as a logfmt line)
and in ``GET /metrics``, summed over both workers.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from .servers import HOST, REPO, Gunicorns

pytestmark = pytest.mark.slow
TIMEOUT = 5


def test_events_reach_the_error_log_and_metrics_count_them(redis_server: Any, tmp_path: Path) -> None:
    redis_server.start()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("FIXGUARD_", "PROMETHEUS_"))}
    env.update(
        FIXGUARD_SECRET_KEY=secrets.token_urlsafe(48),
        FIXGUARD_SECURE="false",
        FIXGUARD_APP_COOKIES="session",
        FIXGUARD_LOGIN="POST /login",
        FIXGUARD_REDIS_URL=redis_server.url,
        FIXGUARD_REDIS_PREFIX=f"observed-{secrets.token_hex(4)}:",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    config = REPO / "examples" / "gunicorn_observed.conf.py"
    with Gunicorns(tmp_path) as pool:
        server = pool.start("observed", "examples.basic_auth_app:app", env, workers=2, config=config)
        server.wait_ready(within=20, probe=lambda base: requests.get(base + "/metrics", timeout=1).ok)

        attacker = requests.Session()
        assert attacker.get(server.base + "/", timeout=TIMEOUT).status_code == 200
        planted = attacker.cookies.get("fixguard")
        assert planted and "session" not in attacker.cookies
        victim = requests.Session()
        victim.cookies.set("fixguard", planted, domain=HOST, path="/")
        login = victim.post(server.base + "/login", auth=("alice", "secret"), timeout=TIMEOUT)
        assert login.status_code == 200 and login.text == "Logged in as alice\n"
        replay = attacker.get(server.base + "/profile", timeout=TIMEOUT)
        assert replay.status_code == 401

        log = server.log_text()
        lines = [line for line in log.splitlines() if "fixation_blocked id=" in line]
        assert len(lines) == 1, log
        assert "[WARNING]" in lines[0] and "path=/profile" in lines[0] and "reason=login" in lines[0]
        assert re.search(r"\[INFO\] rotation id=\S+ method=POST path=/login", log), log

        exposition = ""
        for _ in range(4):  # whichever worker answers, the sum is over both
            exposition = requests.get(server.base + "/metrics", timeout=TIMEOUT).text
            assert 'fixguard_events_total{kind="fixation_blocked"} 1.0' in exposition, exposition
            assert 'fixguard_rejections_total{code="session_ended",status="401"} 1.0' in exposition
            assert "fixguard_settle_waits_total 1.0" in exposition
        assert re.search(r'fixguard_store_seconds_count\{operation="get"\} [1-9]', exposition)
