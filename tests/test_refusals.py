"""Refusals the app can shape: negotiated bodies, a redirect to the login page, the app's own callable.

Each refusal is produced for real: a replayed pre-login ID (401, after the
attack is played), a request whose session a login retired while it ran
(409), a store that does not answer (503). Whatever the shape, the cookie is
cleared exactly when it was before (the 401 only) and nothing is cached.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from webtest import TestApp, TestResponse

from fixguard import FixGuard, MemoryStore, StoreError
from fixguard.responses import MAX_ACCEPT, Rejection, preferred

from .apps import VulnerableApp, fg_cookie
from .apps import guard as plain_guard
from .attack import fixation

#: The refusals here are the ones a replay gets once the moment after the login has passed
#: (within it, a refusal leaves the cookie alone: tests/test_parallel_login.py).
WINDOW = 0.05


def guard(app: Any, **options: Any) -> FixGuard:
    return plain_guard(app, renew_grace=WINDOW, **options)

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FETCH_JSON = "application/json, text/plain, */*"  # axios' default


def login(victim: TestApp) -> TestResponse:
    return victim.post("/login", {"user": "alice", "password": "secret"})


def replay_401(app: FixGuard, accept: str | None = None, method: str = "GET") -> TestResponse:
    """Play the attack; the attacker's replay, sent with ``accept``."""
    outcome = fixation(app, login)
    assert outcome.victim_after.text == "user=alice"
    time.sleep(WINDOW * 1.5)
    attacker = TestApp(app)
    headers = {"Cookie": f"fixguard={outcome.planted}"}
    if accept is not None:
        headers["Accept"] = accept
    return attacker.request("/profile", method=method, headers=headers, expect_errors=True)


def assert_cleared_and_uncached(res: TestResponse) -> None:
    assert fg_cookie(res) == ""  # cleared, exactly as before
    assert res.headers["Cache-Control"] == 'private, no-store, no-cache="Set-Cookie"'


# -- which shape for which client ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text"), ("", "text"), ("*/*", "text"), ("text/*", "text"), ("text/plain", "text"),
        (BROWSER, "html"), ("text/html", "html"), ("application/xhtml+xml", "html"),
        ("application/json", "json"), ("application/problem+json", "json"), (FETCH_JSON, "json"),
        ("application/vnd.api+json", "json"), ("text/html;q=0.5, application/json", "json"),
        ("application/json;q=0.4, text/html;q=0.9", "html"), ("text/html, application/json", "html"),
        ("application/json;q=0", "text"), ("application/json;q=abc", "text"), ("text/html;q=2", "text"),
        ("image/png,*/*;q=0.1", "text"), ("," * 5000, "text"), ("text/html" + " " * MAX_ACCEPT, "text"),
    ],
)  # fmt: skip
def test_preferred_shape(accept: str | None, expected: str) -> None:
    assert preferred(accept) == expected


def test_a_browser_gets_an_html_page() -> None:
    res = replay_401(guard(VulnerableApp()), BROWSER)
    assert res.status_int == 401 and res.content_type == "text/html"
    assert "<h1>Session ended</h1>" in res.text and "Please sign in again." in res.text
    assert res.headers["Vary"] == "Accept"
    assert_cleared_and_uncached(res)


def test_a_json_client_gets_problem_json() -> None:
    res = replay_401(guard(VulnerableApp()), FETCH_JSON)
    assert res.status_int == 401 and res.content_type == "application/problem+json"
    assert json.loads(res.text) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "This session has ended. Please sign in again.",
        "code": "session_ended",
    }
    assert int(res.headers["Content-Length"]) == len(res.body)
    assert_cleared_and_uncached(res)


def test_anything_else_gets_the_plain_text_of_before() -> None:
    for accept in (None, "*/*"):
        res = replay_401(guard(VulnerableApp()), accept)
        assert res.status_int == 401 and res.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert res.text == "This session has ended. Please sign in again.\n"
        assert_cleared_and_uncached(res)


def test_head_gets_the_headers_only() -> None:
    res = replay_401(guard(VulnerableApp()), BROWSER, method="HEAD")
    assert res.status_int == 401 and res.body == b"" and res.content_type == "text/html"


# -- 409 and 503, produced for real ----------------------------------------------------------


class RetiredWhileRunning:
    """An app whose /slow request logs the same session in from elsewhere while it runs."""

    def __init__(self) -> None:
        self.inner = VulnerableApp()
        self.guard: FixGuard | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/slow":
            assert self.guard is not None
            cookie = environ["fixguard.test.cookie"]
            other = TestApp(self.guard)
            other.post("/login", {"password": "secret"}, headers={"Cookie": f"fixguard={cookie}"})
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"the app answered"]
        return self.inner(environ, start_response)


@pytest.mark.parametrize(
    ("accept", "content_type", "marker"),
    [(BROWSER, "text/html", "<h1>Session changed</h1>"), ("application/json", "application/problem+json",
      '"code": "session_changed"'), (None, "text/plain", "Your session changed while this request")],
)  # fmt: skip
def test_a_409_race_is_negotiated_and_keeps_the_cookie(
    accept: str | None, content_type: str, marker: str
) -> None:
    app = RetiredWhileRunning()
    app.guard = g = guard(app, settle_time=0)
    client = TestApp(g)
    cookie = fg_cookie(client.get("/"))
    assert cookie
    headers = {"Cookie": f"fixguard={cookie}", **({"Accept": accept} if accept else {})}
    extra = {"fixguard.test.cookie": cookie}
    res = client.get("/slow", headers=headers, extra_environ=extra, expect_errors=True)
    assert res.status_int == 409 and res.content_type == content_type and marker in res.text
    assert "the app answered" not in res.text
    assert fg_cookie(res) is None  # a 409 never touched the cookie, and still does not
    assert res.headers["Cache-Control"] == "no-store"


class DownStore(MemoryStore):
    def get(self, key: str) -> str | None:
        raise StoreError("Redis GET failed: ConnectionError: refused")


def test_a_503_store_outage_is_negotiated() -> None:
    store = MemoryStore()
    healthy = guard(VulnerableApp(), store=store)
    cookie = fg_cookie(TestApp(healthy).get("/"))
    down = guard(VulnerableApp(), store=DownStore())
    res = TestApp(down).get(
        "/", headers={"Cookie": f"fixguard={cookie}", "Accept": "application/json"}, expect_errors=True
    )
    assert res.status_int == 503 and res.content_type == "application/problem+json"
    assert res.json["code"] == "store_unavailable" and res.json["status"] == 503
    assert res.headers["Retry-After"] == "5" and fg_cookie(res) is None
    html = TestApp(down).get("/", headers={"Cookie": f"fixguard={cookie}", "Accept": BROWSER}, status=503)
    assert "<h1>Session service unavailable</h1>" in html.text


# -- a redirect to the login page ----------------------------------------------------------------


def test_reject_redirect_sends_a_browser_to_the_login_page() -> None:
    res = replay_401(guard(VulnerableApp(), reject_redirect="/login?expired=1"), BROWSER)
    assert res.status_int == 303 and res.headers["Location"].endswith("/login?expired=1")
    assert_cleared_and_uncached(res)
    res = replay_401(guard(VulnerableApp(), reject_redirect="/login"))  # no Accept: a redirect too
    assert res.status_int == 303 and fg_cookie(res) == ""


def test_reject_redirect_still_answers_json_clients_with_a_401() -> None:
    res = replay_401(guard(VulnerableApp(), reject_redirect="/login"), "application/json")
    assert res.status_int == 401 and res.json["code"] == "session_ended"
    assert_cleared_and_uncached(res)


def test_reject_redirect_does_not_hide_an_outage() -> None:
    cookie = fg_cookie(TestApp(guard(VulnerableApp())).get("/"))
    res = TestApp(guard(VulnerableApp(), store=DownStore(), reject_redirect="/login")).get(
        "/", headers={"Cookie": f"fixguard={cookie}", "Accept": BROWSER}, expect_errors=True
    )
    assert res.status_int == 503


# -- the app's own callable ----------------------------------------------------------------------


def test_on_reject_shapes_the_answer_and_fixguard_keeps_its_guarantees() -> None:
    seen: list[Rejection] = []

    def on_reject(rejection: Rejection) -> Any:
        seen.append(rejection)
        headers = [
            ("Content-Type", "text/html"),
            ("Set-Cookie", "session=evil; Path=/"),
            ("Set-Cookie", "fixguard=chosen; Path=/"),
            ("Set-Cookie", "theme=dark; Path=/"),
        ]
        return rejection.status, headers, f"<p>{rejection.code} at {rejection.environ['PATH_INFO']}</p>"

    res = replay_401(guard(VulnerableApp(), on_reject=on_reject), BROWSER)
    assert res.status_int == 401 and res.text == "<p>session_ended at /profile</p>"
    assert seen[0].title == "Session ended" and seen[0].status == 401
    set_cookies = res.headers.getall("Set-Cookie")
    assert not any(h.startswith(("session=", "fixguard=chosen")) for h in set_cookies)
    assert any(h.startswith("theme=dark") for h in set_cookies)
    assert_cleared_and_uncached(res)
    assert res.headers["Content-Length"] == str(len(res.body))


def test_on_reject_none_means_the_default() -> None:
    res = replay_401(guard(VulnerableApp(), on_reject=lambda rejection: None), "application/json")
    assert res.status_int == 401 and res.json["code"] == "session_ended"


@pytest.mark.parametrize(
    "answer",
    [lambda r: 1 / 0, lambda r: (200, [], "welcome back"), lambda r: ("nonsense", [], ""), lambda r: "x"],
)
def test_a_broken_on_reject_never_loses_the_refusal(answer: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="fixguard"):
        res = replay_401(guard(VulnerableApp(), on_reject=answer))
    assert res.status_int == 401 and res.text == "This session has ended. Please sign in again.\n"
    assert_cleared_and_uncached(res)
    assert "on_reject raised or answered something unusable" in caplog.text


def test_on_reject_may_redirect_an_ended_session() -> None:
    res = replay_401(guard(VulnerableApp(), on_reject=lambda r: (302, [("Location", "/signin")], b"")))
    assert res.status_int == 302 and res.headers["Location"].endswith("/signin")
    assert_cleared_and_uncached(res)


def test_on_reject_must_be_callable() -> None:
    from fixguard import ConfigError

    with pytest.raises(ConfigError, match="on_reject must be a callable"):
        guard(VulnerableApp(), on_reject="/login")


def test_a_listener_that_raises_never_loses_the_refusal(caplog: pytest.LogCaptureFixture) -> None:
    g = guard(VulnerableApp())

    def broken(reason: Any) -> None:
        raise RuntimeError("metrics backend down")

    g.refusals.listeners.append(broken)
    with caplog.at_level(logging.ERROR, logger="fixguard"):
        res = replay_401(g)
    assert res.status_int == 401 and fg_cookie(res) == ""
    assert "refusal listener raised" in caplog.text
