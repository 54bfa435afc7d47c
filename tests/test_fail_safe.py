"""A misconfigured or overloaded guard fails safe and loud.

Warnings once per process and name (``unvaulted_cookie``, ``insecure_transport``),
double wrapping refused, and bounded memory: ``MemoryStore(max_records=…)``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from webtest import TestApp

from fixguard import ConfigError, Event, FixGuard, MemoryStore

from .apps import SECRET, VulnerableApp, fg_cookie, guard
from .conftest import tiny_app


def setter(*cookies: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", f"{c}=v; Path=/") for c in cookies])
        return [b"ok"]

    return app


# -- unvaulted session cookies -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["PHPSESSID", "JSESSIONID", "connect.sid", "sessionid", "sid", "my_session", "flask_sess"]
)
def test_a_session_cookie_outside_the_vault_is_reported_once(name: str) -> None:
    events: list[Event] = []
    client = TestApp(guard(setter(name, "session"), on_event=events.append))
    for _ in range(3):
        res = client.get("/")
        assert any(h.startswith(f"{name}=") for h in res.headers.getall("Set-Cookie"))  # it still went out
    warned = [e for e in events if e.kind == "unvaulted_cookie"]
    assert len(warned) == 1 and warned[0].detail["cookie"] == name
    assert "app_cookies" in warned[0].detail["hint"]


def test_ordinary_cookies_and_vaulted_ones_are_not_reported() -> None:
    events: list[Event] = []
    client = TestApp(guard(setter("theme", "csrftoken", "lang", "session"), on_event=events.append))
    client.get("/")
    assert "unvaulted_cookie" not in [e.kind for e in events]


def test_the_warning_reaches_the_fixguard_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fixguard"):
        TestApp(guard(setter("PHPSESSID"))).get("/")
    assert any("unvaulted_cookie" in r.getMessage() and "PHPSESSID" in r.getMessage() for r in caplog.records)


# -- a Secure cookie over plain http -------------------------------------------------------------


def test_a_secure_cookie_over_http_to_a_real_host_is_reported_once_per_host() -> None:
    events: list[Event] = []
    app = FixGuard(tiny_app, secret_key=SECRET, on_event=events.append)  # secure=True, the default
    client = TestApp(app, extra_environ={"HTTP_HOST": "shop.example.com:8080"})
    for _ in range(3):
        client.reset()
        res = client.get("/set?v=a")
        assert "Secure" in res.headers["Set-Cookie"]
    warned = [e for e in events if e.kind == "insecure_transport"]
    assert len(warned) == 1 and warned[0].detail["host"] == "shop.example.com"
    assert "secure=False" in warned[0].detail["hint"] and "ProxyFix" in warned[0].detail["hint"]
    TestApp(app, extra_environ={"HTTP_HOST": "other.example.com"}).get("/set?v=a")
    assert [e.kind for e in events].count("insecure_transport") == 2


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:5000", "[::1]:8000"])
def test_localhost_over_http_is_fine(host: str) -> None:
    events: list[Event] = []
    app = FixGuard(tiny_app, secret_key=SECRET, on_event=events.append)
    TestApp(app, extra_environ={"HTTP_HOST": host}).get("/set?v=a")
    assert "insecure_transport" not in [e.kind for e in events]


def test_https_and_secure_false_are_fine() -> None:
    events: list[Event] = []
    app = FixGuard(tiny_app, secret_key=SECRET, on_event=events.append)
    TestApp(app, extra_environ={"HTTP_HOST": "shop.example.com", "wsgi.url_scheme": "https"}).get("/set?v=a")
    dev = guard(tiny_app, on_event=events.append)  # secure=False
    TestApp(dev, extra_environ={"HTTP_HOST": "shop.example.com"}).get("/set?v=a")
    assert "insecure_transport" not in [e.kind for e in events]


# -- installed twice -----------------------------------------------------------------------------


def test_wrapping_a_guard_in_a_guard_is_refused() -> None:
    inner = guard(tiny_app)
    with pytest.raises(ConfigError, match="already wrapped by FixGuard"):
        guard(inner)


def test_a_guard_meeting_another_guards_call_fails_the_request_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = guard(VulnerableApp())

    def app_that_wraps_itself(environ: dict[str, Any], start_response: Any) -> Any:
        return inner(environ, start_response)

    events: list[Event] = []
    outer = guard(app_that_wraps_itself, on_event=events.append)
    with caplog.at_level(logging.ERROR, logger="fixguard"):
        res = TestApp(outer).get("/", expect_errors=True)
    assert res.status_int == 500 and "installed twice" in res.text
    assert any("installed twice" in r.getMessage() for r in caplog.records)
    assert fg_cookie(res) is None


def test_an_in_process_sub_request_through_the_same_guard_is_not_mistaken_for_it() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/outer":
            environ["PATH_INFO"] = "/inner"
            return list(guarded(environ, start_response))  # the same environ, the same guard
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inner ok"]

    guarded = guard(app)
    res = TestApp(guarded).get("/outer")
    assert res.text == "inner ok" and calls == ["/outer", "/inner"]


# -- bounded memory --------------------------------------------------------------------------------


def test_memory_store_is_bounded_and_forgets_the_least_recently_used() -> None:
    store = MemoryStore(max_records=50)
    app = guard(tiny_app, store=store)
    cookies = [fg_cookie(TestApp(app).get("/set?v=x")) for _ in range(200)]
    assert len(store) == 50
    survivor = cookies[-1]
    res = TestApp(app).get("/whoami", headers={"Cookie": f"fixguard={survivor}"})
    assert res.text == "x"
    evicted = TestApp(app).get("/whoami", headers={"Cookie": f"fixguard={cookies[0]}"})
    assert evicted.text == "anonymous"


def test_an_evicted_tombstone_reads_as_unknown_never_as_its_session() -> None:
    store = MemoryStore(max_records=20)
    vuln = VulnerableApp()
    app = guard(vuln, store=store)
    planted = fg_cookie(TestApp(app).get("/"))
    victim = TestApp(app)
    victim.set_cookie("fixguard", planted or "")
    victim.post("/login", {"password": "secret"})
    replayed = {"Cookie": f"fixguard={planted}"}
    assert TestApp(app).get("/profile", headers=replayed, expect_errors=True).status_int == 401
    for _ in range(100):  # fill the store: the tombstone goes
        TestApp(app).get("/")
    replay = TestApp(app).get("/profile", headers=replayed, expect_errors=True)
    assert replay.status_int == 401 and replay.text == "anonymous"  # the app's answer, to a stranger


def test_len_counts_records_and_max_records_is_checked() -> None:
    store = MemoryStore()
    assert len(store) == 0 and store.max_records == 100_000
    store.create("a", "1L|{}", 10)
    assert len(store) == 1
    with pytest.raises(ConfigError, match="max_records"):
        MemoryStore(max_records=0)
