"""``fixguard check`` against a hostile target: it must stay bounded, escaped, and at home.

The target (:mod:`tests.hostile_target`) puts terminal escapes in every field
it controls, sends an endless body and a 10 MB one, redirects the login to
another host, and in other runs stalls or drips its answer a byte at a time.
The check must finish in bounded time and requests, print no raw control
character (text or JSON), and never connect anywhere but the target.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from fixguard import check
from fixguard.check.audit import MAX_REQUESTS
from fixguard.check.command import user_agent

from .hostile_target import EVIL, FORBIDDEN, HostileSite, Listener, RawServer

ARGV = [
    "--login", "POST /login",
    "--form", "username=alice", "--form", "password=secret",
    "--probe", "/profile", "--logout", "POST /logout",
    "--timeout", "2",
]  # fmt: skip


@pytest.fixture
def elsewhere() -> Iterator[Listener]:
    """The other host the login redirects to; it must never see a connection."""
    listener = Listener()
    try:
        yield listener
    finally:
        listener.close()


def _serve(site: HostileSite, mode: str = "normal") -> RawServer:
    return RawServer(site, mode)


def assert_escaped(text: str) -> None:
    for char in FORBIDDEN:
        assert char not in text, f"{char!r} reached the output"


def test_hostile_fields_are_escaped_and_nothing_leaves_the_target(
    capsys: pytest.CaptureFixture[str], elsewhere: Listener
) -> None:
    server = _serve(HostileSite(elsewhere.port))
    try:
        started = time.monotonic()
        status = check.main([server.base, *ARGV])
        text = capsys.readouterr().out
        status_json = check.main([server.base, *ARGV, "--format", "json"])
        document = capsys.readouterr().out
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert status in (0, 1) and status_json in (0, 1), text  # it ran to the end
    assert_escaped(text)
    assert_escaped(document)
    report = json.loads(document)
    assert_escaped(json.dumps(report, ensure_ascii=False))
    # The escapes are shown, not dropped: an auditor sees what was sent.
    assert "\\x1b]8;;http://evil.example/" in document or "\\\\x1b]8;;http://evil.example/" in document
    assert "Profile of alice \\x1b[2J\\x07" in text
    assert "302 -> http://127.0.0.2:" in text  # the redirect is reported...
    assert elsewhere.connections == 0  # ...and never followed
    assert set(server.hosts) == {f"127.0.0.1:{server.port}"}  # every request went to the target
    assert report["requests"] <= MAX_REQUESTS and len(server.hosts) <= 2 * MAX_REQUESTS
    assert elapsed < 20  # an endless body and a 10 MB one: read only up to the cap, twice over
    assert server.agents == {user_agent()}


def test_hostile_app_in_process(elsewhere: Listener) -> None:
    from fixguard.testing import audit

    site = HostileSite(elsewhere.port)
    started = time.monotonic()
    report = audit(
        site.wsgi,
        login="POST /login",
        probe="/profile",
        form={"username": "alice", "password": "secret"},
        logout="POST /logout",
    )
    assert time.monotonic() - started < 20
    assert report.error is None, report.error
    assert_escaped(report.text())
    assert_escaped(json.dumps(report.as_dict(), ensure_ascii=False))
    assert any("\\x1b" in r.evidence for r in report.results)
    assert elsewhere.connections == 0
    assert report.requests <= MAX_REQUESTS


@pytest.mark.parametrize("mode", ["stall", "drip-head", "drip-body"])
def test_slow_answers_are_cut_at_the_deadline(capsys: pytest.CaptureFixture[str], mode: str) -> None:
    server = _serve(HostileSite(1), mode)
    done: list[int] = []
    runner = threading.Thread(target=lambda: done.append(check.main([server.base, *ARGV[:-1], "1"])))
    try:
        started = time.monotonic()
        runner.start()  # --timeout 1: one request, cut at its deadline; a drip must not reset it
        runner.join(timeout=3)
        elapsed = time.monotonic() - started
    finally:
        server.close()  # also ends a drip the check did not cut, so the thread ends either way
        runner.join(timeout=5)
    out = capsys.readouterr().out
    assert elapsed < 3 and done == [2], (elapsed, out)
    assert f"no complete answer from {server.base} within 1 s" in out
    assert len(server.hosts) == 1


def test_printable_escapes_every_control_and_format_character() -> None:
    from fixguard.check.display import printable

    assert printable(EVIL).isprintable()
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("\u202eevil") == "\\u202eevil"
    assert printable("x\u2028y\x85z") == "x\\u2028y\\x85z"
    assert printable("caf\u00e9\u00a0ok") == "caf\u00e9 ok"  # letters stay, a no-break space is a space
    assert printable(printable(EVIL)) == printable(EVIL)
