"""``fixguard sessions list|revoke SUBJECT`` against the tests' own redis-server.

Sessions are made the way an app makes them: a login through a FixGuard on a
RedisStore, the app naming the user with ``Fixguard-Subject``. The command is
then run as an operator would, configured by ``FIXGUARD_*`` variables or a
TOML file, and the revoked IDs must be refused at once.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from webtest import TestApp
from werkzeug.http import parse_cookie

from fixguard import Event, FixGuard
from fixguard.cli import human_time, main
from fixguard.stores.redis import RedisStore

from .apps import SECRET, fg_cookie

FIXGUARD_401 = "This session has ended. Please sign in again."


def login_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``POST /login?user=NAME`` logs NAME in and names them to fixguard; ``GET /whoami`` answers who."""
    headers = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/login":
        user = parse_qs(environ.get("QUERY_STRING", ""))["user"][0]
        headers += [("Set-Cookie", f"session=user:{user}; Path=/"), ("Fixguard-Subject", user)]
        start_response("200 OK", headers)
        return [b"welcome"]
    session = parse_cookie(environ.get("HTTP_COOKIE", "")).get("session", "anonymous")
    start_response("200 OK", headers)
    return [session.encode()]


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def guard(redis_server: Any, redis_prefix: str, events: list[Event]) -> Iterator[FixGuard]:
    redis_server.start()
    store = RedisStore.from_url(redis_server.url, prefix=redis_prefix)
    yield FixGuard(login_app, SECRET, secure=False, store=store, on_event=events.append)
    store.close()


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, redis_server: Any, redis_prefix: str) -> pytest.MonkeyPatch:
    """The operator's shell: the deployment's FIXGUARD_* variables and nothing else of ours."""
    for name in list(os.environ):
        if name.upper().startswith("FIXGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FIXGUARD_SECRET_KEY", SECRET)
    monkeypatch.setenv("FIXGUARD_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FIXGUARD_REDIS_PREFIX", redis_prefix)
    return monkeypatch


def log_in(guard: FixGuard, user: str) -> tuple[TestApp, str]:
    """A browser that logged in as ``user``; and its fixguard cookie value."""
    browser = TestApp(guard)
    response = browser.post(f"/login?user={user}")
    cookie = fg_cookie(response)
    assert cookie is not None
    assert browser.get("/whoami").text == f"user:{user}"
    return browser, cookie


def fingerprint(guard: FixGuard, cookie: str) -> str:
    verified = guard.ids.verify(cookie)
    assert verified is not None
    return verified.fingerprint


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["sessions", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_then_revoke_ends_exactly_that_users_sessions(
    guard: FixGuard, deployment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], events: list[Event]
) -> None:
    (phone, phone_id), (laptop, laptop_id) = log_in(guard, "alice"), log_in(guard, "alice")
    bob, bob_id = log_in(guard, "bob")
    alice_prints = {fingerprint(guard, phone_id), fingerprint(guard, laptop_id)}

    status, out, err = run(capsys, "list", "alice")
    assert status == 0 and not err
    assert "2 live sessions of 'alice' (Redis, key prefix 'fgtest" in out
    assert out.splitlines()[2].split() == ["FINGERPRINT", "CREATED", "SIGNED", "IN", "LAST", "SEEN"]
    rows = out.splitlines()[3:]
    assert {row.split()[0] for row in rows} == alice_prints
    for row in rows:
        assert row.count(" s ago)") == 3 or "min ago" in row, row  # human times, three per row
    assert fingerprint(guard, bob_id) not in out
    for cookie in (phone_id, laptop_id, bob_id):  # never a usable ID, nor any part of one
        assert cookie.split(".")[0] not in out and cookie.split(".")[1] not in out

    status, out, err = run(capsys, "revoke", "alice")
    assert status == 0 and not err
    assert out.startswith("Revoked 2 sessions of 'alice'")
    assert {row.split()[0] for row in out.splitlines()[3:5]} == alice_prints
    assert "Their IDs are refused from now on" in out

    for browser in (phone, laptop):  # refused at once, by the running app
        refused = browser.get("/whoami", status=401)
        assert refused.text.strip() == FIXGUARD_401
    blocked = [e for e in events if e.kind == "fixation_blocked"]
    assert [e.detail["reason"] for e in blocked] == ["revoked", "revoked"]
    assert bob.get("/whoami").text == "user:bob"  # another user is untouched

    status, out, _ = run(capsys, "list", "alice")
    assert status == 1 and out.startswith("No live session of 'alice'")
    status, out, _ = run(capsys, "revoke", "alice")
    assert status == 1 and out.startswith("No live session of 'alice' to revoke")
    status, out, _ = run(capsys, "list", "Alice")  # subjects match exactly
    assert status == 1 and "Subjects match exactly as the app sent them" in out


def test_json_output(
    guard: FixGuard, deployment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cookie = log_in(guard, "carol")
    status, out, _ = run(capsys, "list", "carol", "--format", "json")
    assert status == 0
    document = json.loads(out)
    assert document["subject"] == "carol" and len(document["sessions"]) == 1
    session = document["sessions"][0]
    assert session["fingerprint"] == fingerprint(guard, cookie)
    assert set(session) == {"fingerprint", "created", "authenticated", "touched"}
    status, out, _ = run(capsys, "revoke", "carol", "--format", "json")
    assert status == 0 and json.loads(out)["revoked"] == 1
    status, out, _ = run(capsys, "revoke", "carol", "--format", "json")
    assert status == 1 and json.loads(out) == {"subject": "carol", "sessions": [], "revoked": 0}


def test_configuration_from_a_toml_file(
    guard: FixGuard,
    deployment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    redis_server: Any,
    redis_prefix: str,
) -> None:
    _, cookie = log_in(guard, "dave")
    deployment.delenv("FIXGUARD_REDIS_URL")
    deployment.delenv("FIXGUARD_REDIS_PREFIX")
    config = tmp_path / "fixguard.toml"
    config.write_text(f'[fixguard]\nredis_url = "{redis_server.url}"\nredis_prefix = "{redis_prefix}"\n')
    status, out, _ = run(capsys, "list", "dave", "--config", str(config))
    assert status == 0 and fingerprint(guard, cookie) in out
    deployment.setenv("FIXGUARD_CONFIG", str(config))  # the same file, as the gunicorn hooks find it
    status, out, _ = run(capsys, "list", "dave")
    assert status == 0 and fingerprint(guard, cookie) in out


def test_no_shared_store_configured(
    deployment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.delenv("FIXGUARD_REDIS_URL")
    deployment.delenv("FIXGUARD_REDIS_PREFIX")
    status, out, err = run(capsys, "list", "alice")
    assert status == 2 and not out
    assert err.startswith("fixguard sessions: no shared store is configured: set FIXGUARD_REDIS_URL")


def test_bad_configuration(
    deployment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deployment.setenv("FIXGUARD_REDIS_PREFX", "app:")
    status, _, err = run(capsys, "revoke", "alice")
    assert status == 2 and "FIXGUARD_REDIS_PREFX (environment variable) is not a fixguard setting" in err
    assert "Did you mean FIXGUARD_REDIS_PREFIX?" in err
    deployment.delenv("FIXGUARD_REDIS_PREFX")
    status, _, err = run(capsys, "list", "alice", "--config", str(tmp_path / "missing.toml"))
    assert status == 2 and "does not exist" in err
    deployment.setenv("FIXGUARD_REDIS_URL", "http://:pa55word@cache/0")
    status, _, err = run(capsys, "list", "alice")
    assert status == 2 and "is not a URL redis-py accepts" in err and "pa55word" not in err
    status, _, err = run(capsys, "list", "")
    assert status == 2 and "SUBJECT is empty" in err


def test_unreachable_store(deployment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    deployment.setenv("FIXGUARD_REDIS_URL", f"redis://:pa55word@127.0.0.1:{port}/0")
    status, out, err = run(capsys, "revoke", "alice")
    assert status == 2 and not out
    assert err.startswith(
        "fixguard sessions: the store did not answer (Redis SMEMBERS failed: ConnectionError"
    )
    assert "check FIXGUARD_REDIS_URL" in err and "Nothing was revoked." in err and "pa55word" not in err


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions"]) == 2
    assert "list" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["sessions", "list"])  # no SUBJECT: argparse's usage error
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["sessions", "list", "--help"])
    assert "Exit status: 0 sessions found" in capsys.readouterr().out


def test_human_time() -> None:
    now = 1_800_000_000.0
    assert human_time(None, now) == "-"
    for seconds, ago in ((5, "5 s ago"), (61, "1 min ago"), (7300, "2 h ago"), (3 * 86400 + 5, "3 d ago")):
        text = human_time(now - seconds, now)
        assert text.endswith(f"({ago})"), text
        assert text[:4] == "2027"  # the date and time itself comes first
    assert human_time(now + 10, now).endswith("(in the future)")
