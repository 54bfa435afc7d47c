"""The vault against cookie smuggling: no client copy of an app cookie reaches the app.

fixguard rebuilds ``HTTP_COOKIE`` before the wrapped app runs. These tests drive
a raw WSGI app that records the header it receives, and read what it received
with four common parsers (werkzeug, ``http.cookies.SimpleCookie``, Django and
WebOb). A cookie is smuggled if *any* of them finds an app cookie there, so the
rebuilt header must hold nothing that two parsers could read differently.

Every hostile case is also checked against the untouched header: the
assertions here would fail if fixguard passed ``HTTP_COOKIE`` straight through.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any

import django.http.cookie
import pytest
import webob.cookies
import werkzeug.http
from hypothesis import given, settings
from hypothesis import strategies as st
from webtest import TestApp

from fixguard import FixGuard

# --------------------------------------------------------------------------
# Shared fixtures and helpers
# --------------------------------------------------------------------------

SECRET_KEY = "0123456789abcdef0123456789abcdef-test"
APP_COOKIES = ("session", "csrftoken")
GUARD_COOKIE = "fixguard"
FORBIDDEN_NAMES = (*APP_COOKIES, GUARD_COOKIE)

#: What the recording app stores in its jar on ``/set`` (through fixguard).
JAR = {"session": "server-side-value", "csrftoken": "server-csrf-value"}

Pairs = list[tuple[str, str]]


class CookieRecorder:
    """A raw WSGI app that remembers the ``HTTP_COOKIE`` of every request.

    ``/set`` answers with ``Set-Cookie`` for every app cookie, the way an app
    starts its own session; every other path just answers 200.
    """

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.seen.append(environ.get("HTTP_COOKIE"))
        headers = [("Content-Type", "text/plain")]
        if environ.get("PATH_INFO") == "/set":
            headers += [("Set-Cookie", f"{name}={value}; Path=/") for name, value in JAR.items()]
        start_response("200 OK", headers)
        return [b"ok"]

    @property
    def last(self) -> str | None:
        assert self.seen, "the app was never called"
        return self.seen[-1]


def guard(app: Callable[..., Any]) -> Callable[..., Any]:
    return FixGuard(app, secret_key=SECRET_KEY, app_cookies=APP_COOKIES, secure=False)


@pytest.fixture
def recorder() -> CookieRecorder:
    return CookieRecorder()


@pytest.fixture
def client(recorder: CookieRecorder) -> TestApp:
    return TestApp(guard(recorder))


def call_direct(app: Callable[..., Any], cookie: str | None, path: str = "/") -> tuple[str, bytes]:
    """Call a WSGI app with a hand-built environ: for headers no client library would send.

    ``cookie`` is the native (latin-1 decoded) string a WSGI server puts in
    ``HTTP_COOKIE``.
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    status: list[str] = []
    written: list[bytes] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(s)
        return written.append

    result = app(environ, start_response)
    try:
        body = b"".join([*written, *result])
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert status, "start_response was never called"
    return status[-1], body


def wire(text: str) -> str:
    """What a WSGI server puts in the environ for a header sent as UTF-8 bytes."""
    return text.encode("utf-8").decode("latin-1")


# The four parsers. Each returns every (name, value) pair it finds.


def parse_werkzeug(header: str) -> Pairs:
    return list(werkzeug.http.parse_cookie(header).items(multi=True))


def parse_simplecookie(header: str) -> Pairs:
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return [(name, morsel.value) for name, morsel in jar.items()]


def parse_django(header: str) -> Pairs:
    return list(django.http.cookie.parse_cookie(header).items())


def parse_webob(header: str) -> Pairs:
    return list(webob.cookies.RequestCookies({"HTTP_COOKIE": header}).items())


PARSERS: dict[str, Callable[[str], Pairs]] = {
    "werkzeug": parse_werkzeug,
    "SimpleCookie": parse_simplecookie,
    "django": parse_django,
    "webob": parse_webob,
}


def parse_all(header: str) -> dict[str, Pairs | Exception]:
    """Every parser's reading of ``header``; a parser that raises gives its exception."""
    out: dict[str, Pairs | Exception] = {}
    for name, parse in PARSERS.items():
        try:
            out[name] = parse(header)
        except Exception as exc:  # a parser choking is an observation, not a crash
            out[name] = exc
    return out


_NAME_NOISE = re.compile(r'\A[\s"$]+|[\s"]+\Z')  # \s: Unicode whitespace, as str.strip()


def normal_name(name: str) -> str:
    """A cookie name as a lenient parser would key it: case, spaces, quotes, ``$`` prefix gone."""
    return _NAME_NOISE.sub("", name).lower()


#: Characters all four parsers accept inside a cookie name: none of them starts
#: a new cookie there, so ``xsession=`` or ``a.session=`` is just a longer name.
_NAME_CHARS = r"A-Za-z0-9_~!@#$%^&*()+\-`.?|:/{}<>'"
_APP_NAMES = "(?:" + "|".join(APP_COOKIES) + ")"
#: In the raw header: an app cookie's ``name=`` (any case, optional ``$``
#: prefix, quotes or spaces before ``=``) anywhere some parser could start a cookie.
_APP_ASSIGNMENT = re.compile(rf"(?<![{_NAME_CHARS}])\$*{_APP_NAMES}[\s\"]*=", re.IGNORECASE)
#: In a parsed value: an app cookie's ``name=`` at all, unless it merely ends a
#: longer word (``mysession=``). A value carrying one is a smuggling attempt.
_APP_ASSIGNMENT_IN_VALUE = re.compile(rf"(?<![A-Za-z0-9_-]){_APP_NAMES}[\s\"]*=", re.IGNORECASE)


def forbidden_findings(header: str, allowed: dict[str, str] | None = None) -> list[str]:
    """Why ``header`` is unsafe to hand the app; empty if it is clean.

    Clean means: every parser reads it without raising; no parser finds an app
    cookie or fixguard's cookie (other than the ``allowed`` jar values, exactly
    once each); no value and no stretch of the raw header carries an app
    cookie's ``name=`` where a parser could split; and werkzeug and SimpleCookie
    agree on every cookie, so no parser differential is left.
    """
    allowed = allowed or {}
    problems: list[str] = []
    readings = parse_all(header)
    for parser, pairs in readings.items():
        if isinstance(pairs, Exception):
            problems.append(f"{parser} raised {type(pairs).__name__}: {pairs}")
            continue
        forbidden = [(n, v) for n, v in pairs if normal_name(n) in FORBIDDEN_NAMES]
        expected = sorted(allowed.items())
        if sorted(forbidden) != expected:
            problems.append(f"{parser} finds {forbidden!r}, only {expected!r} allowed")
        for n, v in pairs:
            if normal_name(n) not in allowed and _APP_ASSIGNMENT_IN_VALUE.search(v):
                problems.append(f"{parser} reads value {v!r} (cookie {n!r}) holding a cookie")

    raw_hits = [m.group(0) for m in _APP_ASSIGNMENT.finditer(header)]
    # the jar's own pairs are the only ``name=`` allowed
    raw_allowed = [f"{name}=" for name in allowed]
    if sorted(h.lower() for h in raw_hits) != sorted(raw_allowed):
        problems.append(f"raw header holds {raw_hits!r}, only {raw_allowed!r} allowed")

    wz, sc = readings["werkzeug"], readings["SimpleCookie"]
    if not isinstance(wz, Exception) and not isinstance(sc, Exception):
        for diff in differential(wz, sc):
            problems.append(diff)
    return problems


def differential(wz: Pairs, sc: Pairs) -> Iterator[str]:
    """Cookies werkzeug and SimpleCookie read differently.

    A repeated ordinary name is allowed (browsers send one per path), but both
    parsers must see the same last value: SimpleCookie keeps only that one.
    """
    wz_last = dict(wz)  # later pairs overwrite earlier ones, as in SimpleCookie
    sc_map = dict(sc)
    if wz_last.keys() != sc_map.keys():
        yield f"werkzeug names {sorted(wz_last)!r} != SimpleCookie names {sorted(sc_map)!r}"
        return
    for name, value in wz_last.items():
        if value != sc_map[name]:
            yield f"cookie {name!r}: werkzeug reads {value!r}, SimpleCookie {sc_map[name]!r}"


def describe(header: str | None) -> str:
    if header is None:
        return "app received no Cookie header"
    lines = [f"app received {header!r}"]
    lines += [f"  {parser}: {pairs!r}" for parser, pairs in parse_all(header).items()]
    return "\n".join(lines)


def assert_clean(received: str | None, allowed: dict[str, str] | None = None) -> None:
    if received is None:
        assert not allowed, f"the app saw no cookies, expected jar {allowed!r}"
        return
    problems = forbidden_findings(received, allowed)
    assert not problems, "\n".join([describe(received), *problems])


def smuggles_app_cookie(header: str) -> bool:
    """True if at least one parser finds an app cookie in ``header``."""
    for pairs in parse_all(header).values():
        if not isinstance(pairs, Exception) and any(normal_name(n) in APP_COOKIES for n, _ in pairs):
            return True
    return False


def webtest_can_send(header: str) -> bool:
    return all(" " <= c <= "~" or c == "\t" for c in header)


# --------------------------------------------------------------------------
# Hostile headers
# --------------------------------------------------------------------------

#: (id, raw HTTP_COOKIE as the WSGI server hands it over, smuggles): ``smuggles``
#: says at least one of the four parsers finds an app cookie in the raw header.
#: The others are hostile in another way (an app cookie's ``name=`` inside a
#: value, a parser differential, a fixguard cookie) and fail ``forbidden_findings``.
HOSTILE: list[tuple[str, str, bool]] = [
    ("space-joined", "theme=dark session=chosen", True),
    ("space-joined-then-more", "x=a session=b; y=c", True),
    ("comma-duplicate", "session=a, session=b", True),
    ("comma-no-space", "x=a,session=b", True),
    ("comma-space", "x=a, session=b", True),
    ("quoted-semicolon", 'x="a;session=b"', True),
    ("quoted-escaped-quote", 'x="a\\"; session=b"', True),
    ("unterminated-quote", 'x="a; session=b', True),
    ("stray-quote", 'x=a"session=b', True),
    ("quote-then-space", 'x="a" session=b', True),
    ("quote-tail", 'x=a"; session=b; "', True),
    ("backslash-semicolon", "x=a\\;session=b", True),
    ("backslash-octal-comma", "x=a\\054session=b", False),
    ("quoted-octal-comma", 'x="a\\054session=b"', False),
    ("backslash-space", "x=a\\ session=b", False),
    ("tab-separator", "x=a\tsession=b", True),
    ("vertical-tab", "x=a\x0bsession=b", True),
    ("form-feed", "x=a\x0csession=b", True),
    ("carriage-return", "x=a\rsession=b", True),
    ("newline", "x=a\nsession=b", True),
    ("nul-in-value", "x=a\x00; session=b", True),
    ("space-before-equals", "session =x", True),
    ("tab-before-equals", "session\t=x", True),
    ("leading-space", " session=x", True),
    ("upper-case", "SESSION=x", True),
    ("title-case", "Session=x", True),
    ("csrf-upper", "CsrfToken=x", True),
    ("plain-after-other", "x=1;session=2", True),
    ("plain-tab-after-semicolon", "x=a;\tsession=b", True),
    ("double-semicolon", "x=1;;session=2", True),
    ("rfc2109-path", "x=1; $Path=/; session=2", True),
    ("dollar-name", "$session=x", True),
    ("dollar-version", "$Version=1; session=x", True),
    ("quoted-name", '"session"=x', True),
    ("spaces-around", "x = a ; session = b", True),
    ("csrftoken", "csrftoken=x", True),
    ("both-app-cookies", "session=a; csrftoken=b", True),
    ("expires-date", "x=Wed, 21-Oct-2015 07:28:00 GMT session=b", True),
    ("value-holds-name", "x=a=session=b", False),
    ("value-holds-name-quoted", 'x="session=b"', False),
    ("latin1-byte", "x=\xe9 session=b", True),
    ("utf8-mojibake", wire("x=é session=b"), True),
    ("invalid-utf8", "x=\xff; session=b", True),
    ("nbsp-after-semicolon", "x=a;\xa0session=b", True),
    ("unit-separator-after-semicolon", "x=a;\x1fsession=b", True),
    ("file-separator-after-semicolon", "x=a;\x1csession=b", True),
    ("next-line-after-semicolon", "x=a;\x85session=b", True),
    ("ideographic-space-utf8", wire("x=a;\u3000session=b"), True),
    ("unit-separator-in-value", "x=a\x1fsession=b", True),
    ("value-ampersand", "x=a&session=b", False),
    ("value-dot", "x=a.csrftoken=b", False),
    ("simplecookie-attributes", "theme=dark; path=/x; expires=1", False),
    ("simplecookie-flag", "theme=dark; Secure; session=x", True),
    ("bare-name", "session", True),
    ("empty-name", "=session=x", False),
    ("guard-duplicates", "fixguard=a; fixguard=b; session=x", True),
    ("guard-only", "fixguard=not-a-real-id", False),
    ("guard-upper", "FIXGUARD=a; theme=dark", False),
    ("guard-smuggled", "theme=dark fixguard=a", False),
    ("oversized", "pad=" + "a" * 17_000 + "; session=x", True),
    ("oversized-padding-after", "session=x; pad=" + "a" * 17_000, True),
]
_HOSTILE_IDS = [case_id for case_id, _, _ in HOSTILE]
assert len(set(_HOSTILE_IDS)) == len(_HOSTILE_IDS)


@pytest.mark.parametrize(("header", "smuggles"), [c[1:] for c in HOSTILE], ids=_HOSTILE_IDS)
def test_hostile_case_is_really_hostile(header: str, smuggles: bool) -> None:
    """The table has teeth: passed through untouched, every case fails the checks."""
    assert forbidden_findings(header), "this header would pass even without fixguard"
    assert smuggles_app_cookie(header) is smuggles


def test_hostile_table_is_mostly_direct_smuggling() -> None:
    assert len(HOSTILE) >= 30
    assert sum(smuggles for _, _, smuggles in HOSTILE) >= 0.75 * len(HOSTILE)


@pytest.mark.parametrize("header", [c[1] for c in HOSTILE], ids=_HOSTILE_IDS)
def test_hostile_header_called_directly(recorder: CookieRecorder, header: str) -> None:
    status, _ = call_direct(guard(recorder), header)
    assert status.startswith("200"), status
    assert len(recorder.seen) == 1
    assert_clean(recorder.last)


@pytest.mark.parametrize(
    "header",
    [c[1] for c in HOSTILE if webtest_can_send(c[1])],
    ids=[c[0] for c in HOSTILE if webtest_can_send(c[1])],
)
def test_hostile_header_through_webtest(client: TestApp, recorder: CookieRecorder, header: str) -> None:
    response = client.get("/", headers={"Cookie": header})
    assert response.status_int == 200
    assert len(recorder.seen) == 1
    assert_clean(recorder.last)


def test_hostile_headers_combined(recorder: CookieRecorder) -> None:
    """All the tricks in one header: nothing of them gets through, ordinary cookies may."""
    header = "; ".join(h for _, h, _ in HOSTILE if len(h) < 100)
    status, _ = call_direct(guard(recorder), header)
    assert status.startswith("200"), status
    assert_clean(recorder.last)


# --------------------------------------------------------------------------
# Bad input is never an exception
# --------------------------------------------------------------------------

GARBAGE: list[tuple[str, str]] = [
    ("empty", ""),
    ("only-semicolons", ";;;;;"),
    ("only-equals", "===="),
    ("only-quotes", '"""'),
    ("only-backslashes", "\\\\\\"),
    ("only-whitespace", " \t \t"),
    ("nul-bytes", "\x00\x00\x00"),
    ("control-chars", "".join(chr(i) for i in range(32))),
    ("all-latin1", "".join(chr(i) for i in range(256))),
    ("high-latin1-name", "\xe9\xe8=\xff"),
    ("utf8-emoji", wire("emoji=🍪; session=🍪")),
    ("lone-surrogate-bytes", "x=\xed\xa0\x80"),
    ("huge-single", "x=" + "b" * 20_000),
    ("huge-name", "n" * 20_000 + "=1"),
    ("huge-quoted", 'x="' + "\\" * 20_000),
    ("many-cookies", "; ".join(f"c{i}=v{i}" for i in range(3_000))),
    ("many-app-cookies", "; ".join(f"session=v{i}" for i in range(3_000))),
    ("many-semicolons", ";" * 20_000),
    ("many-commas", "x=" + "," * 20_000),
    ("nested-quotes", 'x="' * 2_000),
]


@pytest.mark.parametrize("header", [h for _, h in GARBAGE], ids=[i for i, _ in GARBAGE])
def test_garbage_header_is_a_normal_response(recorder: CookieRecorder, header: str) -> None:
    status, body = call_direct(guard(recorder), header)
    assert status.startswith("200"), status
    assert body == b"ok"
    assert len(recorder.seen) == 1
    assert_clean(recorder.last)


def test_no_cookie_header_at_all(recorder: CookieRecorder) -> None:
    status, _ = call_direct(guard(recorder), None)
    assert status.startswith("200"), status
    assert_clean(recorder.last)


# --------------------------------------------------------------------------
# Benign headers
# --------------------------------------------------------------------------

BENIGN: list[tuple[str, str]] = [
    ("theme", "theme=dark"),
    ("lang", "lang=en-US"),
    ("ab-test", "ab_test=B_7"),
    ("google-analytics", "_ga=GA1.1.123.456"),
    ("base64-padding-1", "tok=YWJjZA=="),
    ("base64-padding-2", "blob=YWJjZGU="),
    ("percent-encoded", "next=%2Fdashboard%3Ftab%3D1"),
    ("several", "theme=dark; lang=en-US; ab_test=B_7; _ga=GA1.1.123.456; tok=YWJjZA=="),
    ("no-space-separator", "theme=dark;lang=en-US"),
    ("with-app-cookie", "theme=dark; session=attacker; lang=en-US"),
    ("with-csrftoken", "csrftoken=planted; ab_test=B_7"),
    ("with-guard-cookie", "fixguard=bogus; theme=dark"),
    ("many", "; ".join(f"pref{i}=value-{i}" for i in range(40))),
]


def expected_pairs(header: str) -> Pairs:
    return [(n, v) for n, v in parse_werkzeug(header) if normal_name(n) not in FORBIDDEN_NAMES]


@pytest.mark.parametrize("header", [h for _, h in BENIGN], ids=[i for i, _ in BENIGN])
def test_benign_cookies_reach_the_app_unchanged(
    client: TestApp, recorder: CookieRecorder, header: str
) -> None:
    expected = expected_pairs(header)
    assert expected, "a benign case must carry at least one ordinary cookie"
    response = client.get("/", headers={"Cookie": header})
    assert response.status_int == 200
    received = recorder.last
    assert received is not None, f"ordinary cookies {expected!r} were dropped"
    assert sorted(parse_werkzeug(received)) == sorted(expected), describe(received)
    assert_clean(received)


@pytest.mark.parametrize("header", [h for _, h in BENIGN], ids=[i for i, _ in BENIGN])
def test_benign_cookies_called_directly(recorder: CookieRecorder, header: str) -> None:
    status, _ = call_direct(guard(recorder), header)
    assert status.startswith("200"), status
    received = recorder.last
    assert received is not None
    assert sorted(parse_werkzeug(received)) == sorted(expected_pairs(header)), describe(received)


# --------------------------------------------------------------------------
# The jar: with a fixguard session, the app sees the jar's values, only those
# --------------------------------------------------------------------------


def start_session(client: TestApp, recorder: CookieRecorder) -> str:
    """Let the app set its session cookies; return the fixguard cookie the client got."""
    response = client.get("/set")
    assert response.status_int == 200
    set_cookies = response.headers.getall("Set-Cookie")
    leaked = [c for c in set_cookies if normal_name(c.split("=", 1)[0]) in APP_COOKIES]
    assert not leaked, f"app cookies reached the client: {leaked!r}"
    assert GUARD_COOKIE in client.cookies, f"no fixguard cookie issued: {set_cookies!r}"
    assert not set(client.cookies) & set(APP_COOKIES)
    return client.cookies[GUARD_COOKIE]


def test_jar_values_reach_the_app(client: TestApp, recorder: CookieRecorder) -> None:
    start_session(client, recorder)
    client.get("/")
    assert_clean(recorder.last, allowed=JAR)


def voids_the_session(header: str) -> bool:
    """A second fixguard cookie or an oversized header: fail closed, no session is fine."""
    return GUARD_COOKIE in header.lower() or len(header) > 16 * 1024


@pytest.mark.parametrize("header", [c[1] for c in HOSTILE], ids=_HOSTILE_IDS)
def test_jar_replaces_every_client_copy(client: TestApp, recorder: CookieRecorder, header: str) -> None:
    sid = start_session(client, recorder)
    status, _ = call_direct(client.app, f"{GUARD_COOKIE}={sid}; {header}")
    assert status.startswith("200"), status
    received = recorder.last
    if voids_the_session(header) and (received is None or "server-side-value" not in received):
        assert_clean(received)  # treated as no session: still no client copy
    else:
        assert_clean(received, allowed=JAR)


@pytest.mark.parametrize(
    "header",
    [
        "session=attacker",
        "session=attacker; csrftoken=attacker",
        "theme=dark session=attacker",
        'x="a;session=attacker"',
    ],
)
def test_jar_wins_wherever_the_guard_cookie_is(
    client: TestApp, recorder: CookieRecorder, header: str
) -> None:
    sid = start_session(client, recorder)
    for cookie in (f"{header}; {GUARD_COOKIE}={sid}", f"{GUARD_COOKIE}={sid}; {header}"):
        response = client.get("/", headers={"Cookie": cookie})
        assert response.status_int == 200
        assert_clean(recorder.last, allowed=JAR)


# --------------------------------------------------------------------------
# fixguard's own cookie never reaches the app
# --------------------------------------------------------------------------


def test_real_guard_cookie_is_hidden_from_the_app(client: TestApp, recorder: CookieRecorder) -> None:
    sid = start_session(client, recorder)
    client.get("/")
    received = recorder.last
    assert received is not None
    assert sid not in received
    assert all(
        normal_name(n) != GUARD_COOKIE
        for pairs in parse_all(received).values()
        if not isinstance(pairs, Exception)
        for n, _ in pairs
    ), describe(received)


@pytest.mark.parametrize(
    "header",
    [
        "fixguard=bogus",
        "fixguard=a; fixguard=b",
        "theme=dark; fixguard=bogus; lang=en",
        "Fixguard=bogus",
        " fixguard =bogus",
        '"fixguard"=bogus',
        "$fixguard=bogus",
        "theme=dark fixguard=bogus",
    ],
)
def test_guard_cookie_variants_are_hidden_from_the_app(recorder: CookieRecorder, header: str) -> None:
    status, _ = call_direct(guard(recorder), header)
    assert status.startswith("200"), status
    assert_clean(recorder.last)
    assert "bogus" not in (recorder.last or "")


def test_stale_guard_cookie_next_to_a_live_one(client: TestApp, recorder: CookieRecorder) -> None:
    sid = start_session(client, recorder)
    header = f"fixguard=stale; {GUARD_COOKIE}={sid}; fixguard={sid}"
    status, _ = call_direct(client.app, header)
    assert status.startswith(("200", "4")), status
    if status.startswith("200"):
        received = recorder.last
        assert received is None or sid not in received
        assert received is None or "stale" not in received
        if received is not None:
            # whichever copy fixguard trusted: the jar or nothing, never a client cookie
            with_jar, without = forbidden_findings(received, JAR), forbidden_findings(received)
            assert not with_jar or not without, describe(received)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

COOKIEISH = 'sessionSESSIONcsrftokenfixguardxyzXYZ019_-$=;, "\\\t\x00\x0b\r\né\xff€☃'

TOKENS = [
    "session",
    "Session",
    "SESSION",
    "csrftoken",
    "CSRFTOKEN",
    "fixguard",
    "=",
    ";",
    ";",
    "; ",
    ",",
    ", ",
    " ",
    "\t",
    '"',
    "\\",
    "\\054",
    "\\073",
    "$",
    "$Path=/",
    "x",
    "theme",
    "dark",
    "a",
    "1",
    "\xff",
    "\xc3\xa9",
    "\x00",
    "\r\n",
    "GMT",
]

guarded_property = settings(max_examples=250, deadline=None)


def deliver(header: str) -> str | None:
    """Send ``header`` through a fresh fixguard; check the normal response; return what the app saw."""
    recorder = CookieRecorder()
    status, body = call_direct(guard(recorder), header)
    assert status.startswith("200"), (header, status)
    assert body == b"ok"
    assert len(recorder.seen) == 1
    return recorder.last


@guarded_property
@given(st.text(alphabet=COOKIEISH, max_size=120).map(wire))
def test_property_text_over_cookie_alphabet(header: str) -> None:
    assert_clean(deliver(header))


@guarded_property
@given(st.binary(max_size=120).map(lambda raw: raw.decode("latin-1")))
def test_property_raw_bytes(header: str) -> None:
    assert_clean(deliver(header))


@guarded_property
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_property_token_soup(header: str) -> None:
    assert_clean(deliver(header))


#: Names SimpleCookie reads as attributes of the cookie before them, not as cookies.
RESERVED = {
    "expires",
    "path",
    "comment",
    "domain",
    "max-age",
    "secure",
    "httponly",
    "version",
    "samesite",
    "partitioned",
}
SAFE_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,10}\Z").filter(
    lambda n: n.lower() not in RESERVED and not any(f in n.lower() for f in FORBIDDEN_NAMES)
)
SAFE_VALUE = st.builds(
    lambda body, pad: body + pad,
    st.from_regex(r"\A[A-Za-z0-9._/+-]{0,16}\Z"),
    st.sampled_from(["", "", "=", "=="]),
)
PLANTED_NAME = st.sampled_from(["session", "Session", "SESSION", "csrftoken", "CSRFToken", "fixguard"])
HOSTILE_NAME = st.sampled_from(
    [
        "session",
        "Session",
        " session",
        "session ",
        "$session",
        '"session"',
        "SESSION",
        "csrftoken",
        "CSRFToken",
        "fixguard",
        "$Path",
        "se ssion",
    ]
)
HOSTILE_VALUE = st.one_of(
    st.sampled_from(
        [
            "x session=y",
            "a,session=b",
            '"a;session=b"',
            "a\\;session=b",
            '"a\\"; session=b"',
            "a\tsession=b",
            '"unterminated',
            "a\\054session=b",
            "Wed, 21-Oct-2015 07:28:00 GMT",
            "\xc3\xa9",
            "\xff",
            "a=b=c",
        ]
    ),
    st.text(alphabet=COOKIEISH, max_size=20).map(wire),
)
SEPARATOR = st.sampled_from(["; ", ";", ";;", "; ; ", ", ", ",", " ", "\t", "; $Path=/; ", ";\t"])


@st.composite
def structured_header(draw: st.DrawFn) -> str:
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(SAFE_NAME, HOSTILE_NAME), st.one_of(SAFE_VALUE, HOSTILE_VALUE)),
            min_size=1,
            max_size=8,
        )
    )
    out = f"{pairs[0][0]}={pairs[0][1]}"
    for name, value in pairs[1:]:
        out += draw(SEPARATOR) + f"{name}={value}"
    return out


@guarded_property
@given(structured_header())
def test_property_structured_cookie_lists(header: str) -> None:
    assert_clean(deliver(header))


@guarded_property
@given(
    st.lists(st.tuples(SAFE_NAME, SAFE_VALUE), min_size=1, max_size=10, unique_by=lambda p: p[0]),
    st.lists(st.tuples(PLANTED_NAME, SAFE_VALUE), max_size=3),
    st.randoms(use_true_random=False),
    st.sampled_from(["; ", ";"]),
)
def test_property_ordinary_cookies_survive(ordinary: Pairs, planted: Pairs, rng: Any, separator: str) -> None:
    """Ordinary cookies mixed with plainly-delimited app cookies: the ordinary ones all arrive."""
    pairs = ordinary + planted
    rng.shuffle(pairs)
    header = separator.join(f"{n}={v}" for n, v in pairs)
    received = deliver(header)
    assert received is not None, f"ordinary cookies {ordinary!r} were dropped"
    assert sorted(parse_werkzeug(received)) == sorted(ordinary), describe(received)
    assert_clean(received)
