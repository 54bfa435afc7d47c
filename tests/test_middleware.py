"""FixGuard's behaviour through WSGI (WebTest): vault, rotation, rejection, logout, timeouts, cookies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from webtest import TestApp

import fixguard
from fixguard import ConfigError, Event, FixGuard, MemoryStore
from fixguard.record import RETIRED, decode

from .apps import OTHER_SECRET, SECRET, VulnerableApp, echo_app, fg_cookie, guard


def client(app: Any, cookie: str | None = None) -> TestApp:
    t = TestApp(app)
    if cookie is not None:
        t.set_cookie("fixguard", cookie)
    return t


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def vuln() -> VulnerableApp:
    return VulnerableApp()


@pytest.fixture
def wrapped(vuln: VulnerableApp, events: list[Event]) -> FixGuard:
    return guard(vuln, on_event=events.append)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


# -- 2. capture into the jar ----------------------------------------------------------


def test_app_cookie_never_reaches_client_and_fixguard_cookie_does(wrapped: FixGuard) -> None:
    t = client(wrapped)
    res = t.get("/")
    set_cookies = res.headers.getall("Set-Cookie")
    assert not any(h.startswith("session=") for h in set_cookies)
    assert fg_cookie(res) is not None
    # the jar gives the app its cookie back on the next request
    res = t.get("/")
    assert res.text == "visits sid=s1"


def test_no_record_for_requests_that_set_no_app_cookie() -> None:
    store = MemoryStore()
    t = client(guard(echo_app, store=store))
    res = t.get("/anything")
    assert fg_cookie(res) is None
    assert len(store) == 0


def test_app_cookie_deletion_and_expiry_are_captured(wrapped: FixGuard, vuln: VulnerableApp) -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_COOKIE", ""))
        path = environ["PATH_INFO"]
        if path == "/set":
            sr("200 OK", [("Set-Cookie", "session=v1; Path=/"), ("Set-Cookie", "prefs=x; Max-Age=1")])
        elif path == "/short":
            sr("200 OK", [("Set-Cookie", "prefs=y; Max-Age=1; Path=/")])
        elif path == "/del":
            sr("200 OK", [("Set-Cookie", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/")])
        else:
            sr("200 OK", [])
        return [b""]

    t = client(guard(app, app_cookies=("session", "prefs")))
    t.get("/set")
    t.get("/short")
    t.get("/look")
    assert seen[-1] == "session=v1; prefs=y"
    t.get("/del")
    t.get("/look")
    assert seen[-1] == "prefs=y"
    time.sleep(1.05)
    t.get("/look")
    assert seen[-1] == ""


def test_jar_respects_cookie_path() -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_COOKIE", ""))
        if environ["PATH_INFO"] == "/admin/start":
            sr("200 OK", [("Set-Cookie", "session=adm; Path=/admin")])
        else:
            sr("200 OK", [])
        return [b""]

    t = client(guard(app))
    t.get("/admin/start")
    t.get("/admin/page")
    assert seen[-1] == "session=adm"
    t.get("/public")
    assert seen[-1] == ""


def test_same_cookie_resent_costs_no_store_write() -> None:
    class CountingStore(MemoryStore):
        writes = 0

        def replace(self, key: str, guard: str, value: str, ttl: float | None) -> bool:
            CountingStore.writes += 1
            return super().replace(key, guard, value, ttl)

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        # like Flask's permanent sessions: same value, expiry pushed forward each time
        sr("200 OK", [("Set-Cookie", f"session=same; Max-Age={3600 + int(time.time() * 1000) % 7}; Path=/")])
        return [b""]

    t = client(guard(app, store=CountingStore()))
    t.get("/")
    for _ in range(20):
        t.get("/")
    assert CountingStore.writes == 0


def test_app_cannot_set_fixguards_cookie() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Set-Cookie", "fixguard=attacker-chosen; Path=/")])
        return [b""]

    res = client(guard(app)).get("/")
    assert res.headers.getall("Set-Cookie") == []


# -- 3. rotation --------------------------------------------------------------------


def test_login_rotates_id_keeps_jar_and_old_id_is_refused(wrapped: FixGuard, events: list[Event]) -> None:
    victim = client(wrapped)
    before = fg_cookie(victim.get("/"))
    assert before is not None
    res = victim.post("/login", {"user": "alice", "password": "secret"})
    after = fg_cookie(res)
    assert after is not None and after != before
    assert victim.get("/profile").text == "user=alice"  # jar migrated to the new ID
    attacker = client(wrapped, before)
    res = attacker.get("/profile", expect_errors=True)
    assert res.status_int == 401
    assert fg_cookie(res) is None  # left alone: it may be the victim's own parallel request
    assert "fixation_blocked" in kinds(events)
    rot = [e for e in events if e.kind == "rotation"]
    assert rot and rot[0].detail["signal"] == "login"


def test_login_rotation_uses_fresh_random_ids(wrapped: FixGuard) -> None:
    ids = set()
    for _ in range(20):
        t = client(wrapped)
        t.get("/")
        new = fg_cookie(t.post("/login", {"password": "secret"}))
        assert new is not None
        sid = new.split(".")[0]
        assert len(sid) >= 43  # 256 bits, base64
        ids.add(sid)
    assert len(ids) == 20


def test_failed_login_unfreezes_and_keeps_session(wrapped: FixGuard, events: list[Event]) -> None:
    t = client(wrapped)
    before = fg_cookie(t.get("/"))
    res = t.post("/login", {"password": "wrong"}, expect_errors=True)
    assert res.status_int == 401
    assert fg_cookie(res) is None  # no rotation, no clearing
    assert t.get("/").text == "visits sid=s1"  # same app session, usable again
    assert t.cookies["fixguard"] == before
    assert "unfrozen" in kinds(events)


def test_failed_login_keeps_what_app_wrote() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            sr("403 Forbidden", [("Set-Cookie", "session=after-failure; Path=/")])
        else:
            sr("200 OK", [("Set-Cookie", "session=start; Path=/")] if "session" not in
               environ.get("HTTP_COOKIE", "") else [])
        return [environ.get("HTTP_COOKIE", "").encode()]

    t = client(guard(app))
    t.get("/")
    t.post("/login", expect_errors=True)
    assert t.get("/").text == "session=after-failure"


def test_rule_with_status_only_counts_that_status() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        form = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"] == "/login" and b"ok" in form:
            sr("302 Found", [("Location", "/"), ("Set-Cookie", "session=in; Path=/")])
        else:
            sr("200 OK", [("Set-Cookie", "session=form; Path=/")])
        return [b""]

    g = guard(app, login=("POST /login 302",))
    t = client(g)
    first = fg_cookie(t.get("/"))
    res = t.post("/login", "bad")  # Django-style failed login: 200 with the form again
    assert fg_cookie(res) is None
    res = t.post("/login", "ok")
    assert fg_cookie(res) not in (None, first)


def test_header_and_call_signals_rotate(vuln: VulnerableApp, events: list[Event]) -> None:
    g = guard(vuln, on_event=events.append)
    for path in ("/header-login", "/call-login"):
        t = client(g)
        before = fg_cookie(t.get("/"))
        res = t.get(path)
        assert "Fixguard-Event" not in res.headers and "Fixguard-Subject" not in res.headers
        after = fg_cookie(res)
        assert after not in (None, before)
        assert client(g, before).get("/profile", expect_errors=True).status_int == 401
        assert t.get("/profile").text == "user=alice"
    assert [e.detail.get("signal") for e in events if e.kind == "rotation"] == ["login", "login"]


def test_subject_reaches_session_info(vuln: VulnerableApp) -> None:
    g = guard(vuln)
    t = client(g)
    t.get("/")
    t.get("/header-login")
    t.get("/")
    info = vuln.seen[-1]["session"]
    assert info.authenticated and info.subject == "alice" and info.state == "live"
    assert info.authenticated_at is not None and info.created is not None
    assert t.cookies["fixguard"].split(".")[0] not in repr(info)  # never the ID itself


def test_signal_outside_fixguard_raises() -> None:
    with pytest.raises(RuntimeError, match="FixGuard"):
        fixguard.signal({}, "login")
    with pytest.raises(ValueError, match="unknown signal"):
        fixguard.signal({"fixguard.context": object()}, "promote")


def test_client_sent_fixguard_event_header_is_ignored(wrapped: FixGuard) -> None:
    t = client(wrapped)
    before = fg_cookie(t.get("/"))
    res = t.get("/", headers={"Fixguard-Event": "login"})
    assert fg_cookie(res) is None
    assert t.cookies["fixguard"] == before


def test_elevate_rotates_again_and_keeps_created(vuln: VulnerableApp) -> None:
    g = guard(vuln, elevate=("POST /elevate",))
    t = client(g)
    t.get("/")
    t.post("/login", {"password": "secret"})
    t.get("/")
    created = vuln.seen[-1]["session"].created
    before = t.cookies["fixguard"]
    after = fg_cookie(t.post("/elevate"))
    assert after not in (None, before)
    t.get("/")
    assert vuln.seen[-1]["session"].created == created
    assert client(g, before).get("/profile", expect_errors=True).status_int == 401


def test_login_without_prior_session_gets_an_id(vuln: VulnerableApp) -> None:
    t = client(guard(vuln))
    res = t.post("/login", {"password": "secret"})
    assert fg_cookie(res)
    assert t.get("/profile").text == "user=alice"


def test_late_write_never_resurrects_a_logged_out_session() -> None:
    """Writes are update-only: a slow request ending after logout cannot bring the record back."""
    store = MemoryStore()
    gate: dict[str, Any] = {}

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            gate["during"]()
            sr("200 OK", [("Set-Cookie", "session=written-late; Path=/")])
        elif environ["PATH_INFO"] == "/logout":
            sr("200 OK", [])
        else:
            sr("200 OK", [("Set-Cookie", "session=v; Path=/")])
        return [environ.get("HTTP_COOKIE", "").encode()]

    g = guard(app, store=store, settle_time=5)  # no 409: we test the write path itself
    t = client(g)
    t.get("/")
    cookie = t.cookies["fixguard"]
    key = g.ids.verify(cookie)
    assert key is not None
    gate["during"] = lambda: client(g, cookie).post("/logout")
    t.get("/slow")
    value = store.get(key.key)
    assert value is not None and decode(value).state == RETIRED
    assert client(g, cookie).get("/", expect_errors=True).status_int == 401


# -- 4. retired IDs --------------------------------------------------------------------


def test_strip_mode_passes_retired_id_as_anonymous(vuln: VulnerableApp, events: list[Event]) -> None:
    g = guard(vuln, on_fixation="strip", on_event=events.append)
    victim = client(g)
    old = fg_cookie(victim.get("/"))
    victim.post("/login", {"password": "secret"})
    res = client(g, old).get("/profile", expect_errors=True)
    assert res.status_int == 401 and res.text == "anonymous"  # the app's own answer
    assert "session=s1" not in vuln.seen[-1]["cookie"]
    assert vuln.seen[-1]["cookie"] == ""
    assert fg_cookie(res) is None  # moments after the login: no new session, no cookie touched
    assert any(e.kind == "fixation_blocked" and e.detail["action"] == "strip" for e in events)


# -- 5. logout ------------------------------------------------------------------------


def test_logout_destroys_record_and_tombstones(wrapped: FixGuard, events: list[Event]) -> None:
    t = client(wrapped)
    t.get("/")
    t.post("/login", {"password": "secret"})
    cookie = t.cookies["fixguard"]
    res = t.post("/logout")
    assert fg_cookie(res) == ""
    assert any("Max-Age=0" in h for h in res.headers.getall("Set-Cookie"))
    assert client(wrapped, cookie).get("/profile", expect_errors=True).status_int == 401
    assert "logout" in kinds(events)
    vid = wrapped.ids.verify(cookie)
    assert vid is not None
    value = wrapped.store.get(vid.key)
    assert value is not None and decode(value).reason == "logout"


# -- 6. timeouts ------------------------------------------------------------------------


def test_idle_timeout(vuln: VulnerableApp, events: list[Event]) -> None:
    g = guard(vuln, idle_timeout=0.3, absolute_timeout=10, on_event=events.append)
    t = client(g)
    t.get("/")
    t.post("/login", {"password": "secret"})
    assert t.get("/profile").text == "user=alice"
    time.sleep(0.4)
    res = t.get("/profile", expect_errors=True)
    assert res.text == "anonymous"
    assert "expired" in kinds(events)


def test_idle_timeout_slides_with_activity(vuln: VulnerableApp) -> None:
    g = guard(vuln, idle_timeout=0.4, absolute_timeout=10)
    t = client(g)
    t.get("/")
    t.post("/login", {"password": "secret"})
    for _ in range(6):
        time.sleep(0.15)
        assert t.get("/profile").text == "user=alice"


def test_absolute_timeout(vuln: VulnerableApp) -> None:
    g = guard(vuln, idle_timeout=0.3, absolute_timeout=0.5)
    t = client(g)
    t.get("/")
    t.post("/login", {"password": "secret"})
    for _ in range(3):
        time.sleep(0.15)
        assert t.get("/profile").text == "user=alice"
    time.sleep(0.15)
    assert t.get("/profile", expect_errors=True).text == "anonymous"


# -- 7. the cookie ---------------------------------------------------------------------


def test_secure_cookie_attributes(vuln: VulnerableApp) -> None:
    g = FixGuard(vuln, secret_key=SECRET)
    t = TestApp(g, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"})
    res = t.get("/")
    [header] = [h for h in res.headers.getall("Set-Cookie")]
    assert header.startswith("__Host-fixguard=")
    parts = {p.strip().split("=")[0].lower() for p in header.split(";")}
    assert {"httponly", "secure", "path", "samesite"} <= parts
    assert "domain" not in parts and "Path=/" in header and "SameSite=Lax" in header
    assert 'no-cache="Set-Cookie"' in res.headers["Cache-Control"]


def test_samesite_and_cookie_name_settings() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Set-Cookie", "session=a")])
        return [b""]

    res = client(guard(app, samesite="strict", cookie_name="sid")).get("/")
    [header] = res.headers.getall("Set-Cookie")
    assert header.startswith("sid=") and "SameSite=Strict" in header and "Secure" not in header


def test_harden_cookies_with_allow_list() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Set-Cookie", "theme=dark; Path=/"), ("Set-Cookie", "csrftoken=t; Path=/"),
                      ("Set-Cookie", "other=1; SameSite=Strict")])
        return [b""]

    hardened = FixGuard(app, secret_key=SECRET, harden_cookies=True, script_cookies=("csrftoken",))
    res = TestApp(hardened).get("/")
    theme, csrf, other = res.headers.getall("Set-Cookie")
    assert "HttpOnly" in theme and "Secure" in theme and "SameSite=Lax" in theme
    assert "HttpOnly" not in csrf and "Secure" in csrf
    assert "SameSite=Strict" in other and "SameSite=Lax" not in other
    plain = TestApp(FixGuard(app, secret_key=SECRET)).get("/")
    assert plain.headers.getall("Set-Cookie")[0] == "theme=dark; Path=/"


# -- 8. signatures and keys -------------------------------------------------------------


def test_fallback_keys_verify_only_current_signs(vuln: VulnerableApp) -> None:
    store = MemoryStore()
    old = guard(vuln, secret_key=OTHER_SECRET, store=store)
    t = client(old)
    t.get("/")
    cookie = t.cookies["fixguard"]
    new = guard(vuln, secret_key=SECRET, fallback_keys=(OTHER_SECRET,), store=store)
    t2 = client(new, cookie)
    assert t2.get("/").text == "visits sid=s1"  # old-key session still found
    res = t2.post("/login", {"password": "secret"})
    fresh = fg_cookie(res)
    assert fresh is not None
    assert old.ids.verify(fresh) is None and new.ids.verify(fresh) is not None  # signed with current key
    # without the fallback, the old cookie is just a bad signature
    assert client(guard(vuln, store=store), cookie).get("/").text == "visits sid=s2"


def test_store_keys_are_keyed_hashes_not_ids(wrapped: FixGuard) -> None:
    t = client(wrapped)
    t.get("/")
    sid = t.cookies["fixguard"].split(".")[0]
    store = wrapped.store
    assert isinstance(store, MemoryStore)
    keys = list(store._data)
    assert keys and all(sid not in k for k in keys)
    assert all(sid not in v for v, _ in store._data.values())


def test_bad_signature_is_no_session(wrapped: FixGuard, events: list[Event]) -> None:
    t = client(wrapped)
    t.get("/")
    sid, sig = t.cookies["fixguard"].split(".")
    forged = sid + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    res = client(wrapped, forged).get("/")
    assert res.text == "visits sid=s2"
    assert fg_cookie(res) not in (None, forged)
    assert "bad_signature" in kinds(events)


def test_signature_compare_is_constant_time() -> None:
    import inspect

    import itsdangerous.signer

    assert "hmac.compare_digest" in inspect.getsource(itsdangerous.signer.Signer.verify_signature) or \
        "compare_digest" in inspect.getsource(itsdangerous.signer)


# -- 9. hostile input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "fixguard=",
        "fixguard=.",
        "fixguard=" + "A" * 5000,
        "fixguard=a; fixguard=b",
        "fixguard=\xe9\xe9\xe9",
        "\x00\x01\x02",
        ";;;;====;;;",
        "x=" + "y" * 20000,
        "; ".join(f"c{i}=v" for i in range(500)),
        "fixguard=" + "a" * 43 + "." + "b" * 43,
    ],
)
def test_bad_cookie_headers_are_no_session(header: str, wrapped: FixGuard) -> None:
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/profile", "SERVER_NAME": "x", "SERVER_PORT": "80",
        "wsgi.input": None, "wsgi.url_scheme": "http", "HTTP_COOKIE": header,
    }
    status: list[str] = []
    body = b"".join(wrapped(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type]
    assert status == ["401 Unauthorized"] and body == b"anonymous"


def test_duplicated_fixguard_cookie_is_no_session(wrapped: FixGuard) -> None:
    t = client(wrapped)
    t.get("/")
    good = t.cookies["fixguard"]
    res = TestApp(wrapped).get("/", headers={"Cookie": f"fixguard={good}; fixguard={good}"})
    assert res.text == "visits sid=s2"


def test_quoted_fixguard_cookie_is_accepted(wrapped: FixGuard) -> None:
    """WebTest's set_cookie and some old clients quote values; ours has nothing to unquote."""
    t = client(wrapped)
    t.get("/")
    res = TestApp(wrapped).get("/", headers={"Cookie": f'fixguard="{t.cookies["fixguard"]}"'})
    assert res.text == "visits sid=s1"


def test_client_copy_of_app_cookie_is_replaced_by_jar(wrapped: FixGuard, vuln: VulnerableApp) -> None:
    t = client(wrapped)
    t.get("/")
    res = t.get("/", headers={"Cookie": f"fixguard={t.cookies['fixguard']}; session=attacker"})
    assert res.text == "visits sid=s1"
    assert vuln.seen[-1]["cookie"] == "session=s1"


# -- 10. WSGI correctness ---------------------------------------------------------------


def test_streaming_generator_and_close_are_preserved() -> None:
    closed: list[bool] = []

    class Body:
        def __init__(self, sr: Any) -> None:
            self.sr = sr

        def __iter__(self) -> Any:
            self.sr("200 OK", [("Set-Cookie", "session=s")])  # start_response at first iteration
            yield b"a"
            yield b"b"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], sr: Any) -> Body:
        return Body(sr)

    res = client(guard(app)).get("/")
    assert res.body == b"ab" and fg_cookie(res)
    assert closed == [True]


def test_write_callable_passes_through() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        write = sr("200 OK", [("Content-Type", "text/plain")])
        write(b"via write;")
        return [b"via iterable"]

    assert client(guard(app)).get("/").body == b"via write;via iterable"


def test_exc_info_reraise_and_single_start_response() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Set-Cookie", "session=s")])
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            sr("500 Internal Server Error", [("Set-Cookie", "session=t")], sys.exc_info())
        return [b"error page"]

    g = guard(app)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http"}

    def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        calls.append(status)
        assert not any(v.startswith("session=") for _, v in headers)
        return lambda b: None

    assert list(g(environ, sr)) == [b"error page"]
    assert calls == ["200 OK", "500 Internal Server Error"]


def test_app_exception_before_start_response_unfreezes(wrapped: FixGuard) -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            raise RuntimeError("crash during login")
        sr("200 OK", [("Set-Cookie", "session=x")] if "session" not in environ.get("HTTP_COOKIE", "") else [])
        return [environ.get("HTTP_COOKIE", "").encode()]

    g = guard(app)
    t = client(g)
    t.get("/")
    with pytest.raises(RuntimeError):
        t.post("/login")
    assert t.get("/").text == "session=x"  # not stuck frozen


def test_head_and_304_unharmed() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/cached":
            sr("304 Not Modified", [("ETag", '"1"')])
            return []
        sr("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5"), ("Set-Cookie", "session=s")])
        return [b"hello"] if environ["REQUEST_METHOD"] != "HEAD" else []

    t = client(guard(app))
    res = t.head("/")
    assert res.body == b"" and res.headers["Content-Length"] == "5"
    res = t.get("/cached", status=304)
    assert res.headers["ETag"] == '"1"' and "Set-Cookie" not in res.headers


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret_key": "short"}, "at least 32"),
        ({"secret_key": None}, "secret_key is required"),
        ({"secret_key": "changeme-changeme-changeme-changeme"}, "placeholder"),
        ({"secret_key": "django-insecure-" + "x1" * 20}, "placeholder"),
        ({"fallback_keys": ("short",)}, "fallback_keys"),
        ({"secure": False, "cookie_name": "__Host-sid"}, "secure=True"),
        ({"samesite": "sometimes"}, "samesite"),
        ({"secure": False, "samesite": "None"}, "secure=True"),
        ({"idle_timeout": 100, "absolute_timeout": 10}, "absolute_timeout"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"on_fixation": "ignore"}, "on_fixation"),
        ({"login": ("/login",)}, "METHOD /path"),
        ({"login": ("POST login",)}, "must start with"),
        ({"login": ("POST /login 2000",)}, "status"),
        ({"login": ("POST /x",), "logout": ("POST /x",)}, "both"),
        ({"app_cookies": ("bad name",)}, "app_cookies"),
        ({"app_cookies": ("fixguard",), "secure": False}, "differ"),
        ({"store": object()}, "Store protocol"),
        ({"on_event": "print"}, "on_event"),
    ],
)
def test_bad_configuration_is_refused_with_a_message(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("secret_key", SECRET)
    with pytest.raises(ConfigError, match=message):
        FixGuard(echo_app, **kwargs)


def test_glob_rules() -> None:
    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Set-Cookie", "session=x")])
        return [b""]

    g = guard(app, login=("POST /auth/*/callback", "* /sso/**"))
    for method, path, rotates in [
        ("POST", "/auth/github/callback", True),
        ("POST", "/auth/a/b/callback", False),
        ("GET", "/auth/github/callback", False),
        ("GET", "/sso/x/y", True),
    ]:
        t = client(g)
        first = fg_cookie(t.get("/"))
        res = t.request(path, method=method)
        assert (fg_cookie(res) not in (None, first)) is rotates, path


# -- sessions per subject -------------------------------------------------------------------


def test_sessions_per_subject_listed_and_revoked(
    vuln: VulnerableApp, events: list[Event], store: fixguard.Store
) -> None:
    """Against MemoryStore and the real redis-server."""
    g = guard(vuln, store=store, on_event=events.append)
    clients = []
    for _ in range(3):
        t = client(g)
        t.get("/")
        t.get("/header-login")  # Fixguard-Subject: alice
        clients.append(t)
    other = client(g)
    other.post("/login", {"password": "secret"})  # no subject
    listed = store.sessions("alice")
    assert len(listed) == 3 and all(s.subject == "alice" and s.authenticated for s in listed)
    cookies = [t.cookies["fixguard"] for t in clients]
    assert all(c.split(".")[0][:12] not in repr(listed) for c in cookies)  # fingerprints, not IDs
    assert store.revoke("alice") == 3
    assert store.sessions("alice") == []
    for c in cookies:
        assert client(g, c).get("/profile", expect_errors=True).status_int == 401
    assert other.get("/profile").text == "user=alice"  # the session without a subject is untouched
    reasons = [e.detail.get("reason") for e in events if e.kind == "fixation_blocked"]
    assert reasons == ["revoked"] * 3


# -- renewal ------------------------------------------------------------------------------------


def test_renewal_with_grace_window(vuln: VulnerableApp, events: list[Event]) -> None:
    g = guard(vuln, renew_after=0.2, renew_grace=0.5, on_event=events.append)
    t = client(g)
    t.get("/")
    pre = t.cookies["fixguard"]
    t.post("/login", {"password": "secret"})
    old = t.cookies["fixguard"]
    assert fg_cookie(t.get("/profile")) is None  # young ID: nothing to renew
    time.sleep(0.25)
    res = t.get("/profile")
    new = fg_cookie(res)
    assert res.text == "user=alice" and new not in (None, old)
    assert "renewal" in kinds(events)
    # parallel requests still carrying the old ID keep working and learn the newest ID
    for _ in range(3):
        r = client(g, old).get("/profile")
        assert r.text == "user=alice" and fg_cookie(r) == new
    # the pre-login ID never had a grace window
    assert client(g, pre).get("/profile", expect_errors=True).status_int == 401
    time.sleep(0.55)
    r = client(g, old).get("/profile", expect_errors=True)
    assert r.text == "anonymous"  # grace over
    assert TestApp(g).get("/profile", headers={"Cookie": f"fixguard={new}"}).text == "user=alice"


def test_pre_login_ids_are_never_renewed(vuln: VulnerableApp) -> None:
    g = guard(vuln, renew_after=0.1)
    t = client(g)
    t.get("/")
    time.sleep(0.15)
    assert fg_cookie(t.get("/")) is None


def test_login_presenting_renewed_id_retires_the_whole_chain(vuln: VulnerableApp) -> None:
    g = guard(vuln, renew_after=0.1, renew_grace=5, elevate=("POST /elevate",))
    t = client(g)
    t.get("/")
    t.post("/login", {"password": "secret"})
    old = t.cookies["fixguard"]
    time.sleep(0.15)
    new = fg_cookie(t.get("/profile"))
    res = TestApp(g).post("/elevate", headers={"Cookie": f"fixguard={old}"})
    top = fg_cookie(res)
    assert top not in (None, old, new)
    for stale in (old, new):
        assert client(g, stale).get("/profile", expect_errors=True).status_int == 401


def test_tombstones_live_as_long_as_the_old_session_could_then_vanish(store: fixguard.Store) -> None:
    vuln = VulnerableApp()
    g = guard(vuln, store=store, idle_timeout=0.5, absolute_timeout=0.8)
    t = client(g)
    t.get("/")
    old = t.cookies["fixguard"]
    old_key = g.ids.verify(old)
    assert old_key is not None
    time.sleep(0.3)
    t.post("/login", {"password": "secret"})
    value = store.get(old_key.key)
    assert value is not None and decode(value).state == RETIRED
    assert client(g, old).get("/profile", expect_errors=True).status_int == 401
    time.sleep(0.3)
    assert store.get(old_key.key) is not None  # still refused: the old session could still be alive
    time.sleep(0.35)  # past created + absolute_timeout of the old session
    assert store.get(old_key.key) is None


def test_apps_own_header_list_is_never_mutated() -> None:
    """Hand-written apps reuse one header list; fixguard's cookie must not leak into it."""
    shared: list[tuple[str, str]] = [("Content-Type", "text/plain")]

    def app(environ: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", shared)
        return [b"ok"]

    g = guard(app)
    res = TestApp(g).post("/login")  # a login rule: fixguard adds its cookie to this response
    assert fg_cookie(res)
    assert shared == [("Content-Type", "text/plain")]
    res = TestApp(g).get("/", headers={"Cookie": "fixguard=" + "A" * 43 + "." + "B" * 43})
    assert fg_cookie(res) == ""  # cleared on a bad signature...
    assert shared == [("Content-Type", "text/plain")]  # ...without touching the app's list
    assert TestApp(g).get("/").headers.getall("Set-Cookie") == []
