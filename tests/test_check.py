"""``fixguard check`` against real servers on loopback.

gunicorn serves the vulnerable examples (findings, exit 1), the same examples
protected by fixguard (exit 0), a real Django project's admin login
(``tests/django_project``), bare and protected (exit 0: Django already rotates
its session at login, so the check must not cry wolf), and the apps of
:mod:`tests.check_targets`; the verdict table there is checked here over
HTTP, and in ``test_check_inprocess`` in-process. A small bearer-token
API, vulnerable and safe, is served in-process by ``wsgiref``. Exit status 2
when the check cannot run: connection refused, failed login, bad arguments.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from fixguard import check

from .check_targets import (
    BASIC,
    DJANGO_PASSWORD,
    DJANGO_USER,
    FLASK_LOGIN,
    FORM,
    VERDICTS,
    Verdict,
    assert_no_secret,
    django_database,
)
from .servers import HOST, Gunicorns

pytestmark = pytest.mark.slow

START_TIMEOUT = 20  # seconds for a gunicorn to answer
DJANGO = [
    "--login", "POST /admin/login/",
    "--csrf", "csrfmiddlewaretoken",
    "--form", f"username={DJANGO_USER}",
    "--form", f"password={DJANGO_PASSWORD}",
    "--probe", "/admin/",
    "--logout", "POST /admin/logout/",
]  # fmt: skip


def _answers(base: str) -> bool:
    """Any answer at all to ``GET /`` (a redirect or an error page too): the app is loaded."""
    requests.get(base + "/", timeout=2, allow_redirects=False)
    return True


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Base URL of each app, all served by gunicorn at once; stopped at the end of the module."""
    workdir = tmp_path_factory.mktemp("check")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FIXGUARD_", "DJANGO_"))},
        "FIXGUARD_SECRET_KEY": secrets.token_urlsafe(48),
        "FIXGUARD_SECURE": "0",  # plain http on loopback
        "CHECKTEST_DJANGO_DB": str(workdir / "django.sqlite3"),
        "CHECKTEST_DJANGO_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "tests.django_project.settings",
    }
    flask_apps = {
        "signed-bare": "examples.signed_cookie_app:app",
        "signed-protected": "examples.signed_cookie_app:create_protected_app()",
        "basic-bare": "examples.basic_auth_app:app",
        "basic-protected": "examples.basic_auth_app:create_protected_app()",
        "keep-bare": "tests.check_targets:keep_app",
        "keep-protected": "tests.check_targets:protected_keep_app()",
        "flaskr-bare": "tests.check_targets:flaskr_app",
        "flaskr-protected": "tests.check_targets:protected_flaskr_app()",
    }
    with Gunicorns(workdir) as started:
        for name, app in flask_apps.items():
            started.start(name, app, env)
        django_database(env)  # while the Flask apps boot
        app = "tests.django_project.wsgi:application"
        started.start("django-bare", app, env)
        started.start("django-protected", app, {**env, "CHECKTEST_DJANGO_PROTECT": "1"})
        deadline = time.monotonic() + START_TIMEOUT
        for server in started:
            server.wait_ready(
                within=START_TIMEOUT,
                deadline=deadline,
                fail_on=("Traceback", "Worker failed to boot"),
                probe=_answers,
            )
        yield {server.name: server.base for server in started}


def run_check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = check.main(list(argv))
    return status, capsys.readouterr().out


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Exit status, the JSON report, and each check's result by id."""
    status, out = run_check(capsys, *argv, "--format", "json")
    report = json.loads(out)
    assert report["exit_status"] == status
    return status, report, {c["id"]: c["result"] for c in report["checks"]}


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(("app", "credentials"), [("signed", FORM), ("basic", BASIC)])
def test_vulnerable_examples_have_findings(
    servers: dict[str, str], capsys: pytest.CaptureFixture[str], app: str, credentials: list[str]
) -> None:
    status, report, results = run_json(capsys, servers[f"{app}-bare"], *FLASK_LOGIN, *credentials)
    assert status == 1, report
    assert report["outcome"] == "findings" and report["error"] is None
    assert results["login-rotates-id"] == "fail"  # the pre-login ID is kept...
    assert results["pre-login-id-dead"] == "fail"  # ...and opens the victim's profile
    assert results["chosen-id-refused"] == "pass"  # an ID the app never issued is not adopted
    assert results["logout-ends-session"] == "pass" and results["logout-id-dead"] == "pass"
    assert results["cookie-httponly"] == "pass"
    assert results["cookie-secure"] == "n/a" and results["cookie-host-prefix"] == "n/a"  # plain http
    assert results["token-chosen-refused"] == "n/a"
    assert results["login-rotates-authenticated"] == "fail"  # the attacker's logged-in session too
    assert report["findings"] == 3
    assert report["context"]["session_cookies"] == ["sid" if app == "signed" else "session"]
    evidence = {c["id"]: c["evidence"] for c in report["checks"]}
    assert "Profile of alice" in evidence["pre-login-id-dead"]
    assert "planted by the attacker" in evidence["login-rotates-id"]
    assert_no_secret(json.dumps(report))


@pytest.mark.parametrize(("app", "credentials"), [("signed", FORM), ("basic", BASIC)])
def test_protected_examples_pass(
    servers: dict[str, str], capsys: pytest.CaptureFixture[str], app: str, credentials: list[str]
) -> None:
    status, report, results = run_json(capsys, servers[f"{app}-protected"], *FLASK_LOGIN, *credentials)
    assert status == 0, report
    assert report["outcome"] == "no findings"
    assert report["context"]["session_cookies"] == ["fixguard"]  # the app's own cookie never left the server
    for name in ("login-rotates-id", "pre-login-id-dead", "chosen-id-refused"):
        assert results[name] == "pass", report
    assert results["logout-ends-session"] == "pass" and results["logout-id-dead"] == "pass"
    assert results["cookie-httponly"] == "pass" and results["cookie-samesite"] == "pass"
    # FIXGUARD_SECURE=0 over plain http: not a pass, not a finding either
    assert results["cookie-secure"] == "n/a" and results["cookie-host-prefix"] == "n/a"
    evidence = {c["id"]: c["evidence"] for c in report["checks"]}
    assert "This session has ended" in evidence["pre-login-id-dead"]  # fixguard's 401 for a retired ID
    assert_no_secret(json.dumps(report))


def test_human_report(servers: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_check(capsys, servers["basic-bare"], *FLASK_LOGIN, *BASIC)
    assert status == 1
    assert re.search(r"FAIL +session ID changes at login +session: \S+… \(planted by the attacker\)", out), (
        out
    )
    assert re.search(r"FAIL +pre-login ID gets no access after login", out), out
    assert re.search(r"WARN +session cookie: SameSite +session: no SameSite", out), out  # Flask's default
    assert re.search(r"N/A +session cookie: Secure +session: no Secure, and this is plain http", out), out
    assert re.search(
        r"FAIL +session ID changes at a login from an authenticated session\n +the attacker logged in", out
    ), out
    assert out.rstrip().endswith("3 findings, 1 warning. Exit status 1.")
    assert_no_secret(out)

    status, out = run_check(capsys, servers["basic-protected"], *FLASK_LOGIN, *BASIC)
    assert status == 0
    assert "FAIL" not in out and out.rstrip().endswith("No finding. Exit status 0.")
    assert_no_secret(out)


def test_planted_value_is_never_printed(servers: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    planted = "attacker" + secrets.token_hex(20)
    for app, expected in (("basic-bare", 1), ("basic-protected", 0)):
        status, out = run_check(capsys, servers[app], *FLASK_LOGIN, *BASIC, "--cookie", f"session={planted}")
        assert status == expected, out
        assert re.search(r"PASS +client-chosen ID is not adopted +planted session=attack…", out), out
        assert planted not in out and planted[:10] not in out
    _, out = run_check(capsys, servers["basic-bare"], *FLASK_LOGIN, *BASIC, "--format", "json")
    assert planted not in out


# --------------------------------------------------------------------------- the verdict table


@pytest.mark.parametrize("verdict", VERDICTS, ids=lambda v: v.id)
def test_verdict_table_over_http(
    servers: dict[str, str], capsys: pytest.CaptureFixture[str], verdict: Verdict
) -> None:
    """Each app, served by gunicorn, fails exactly the checks the table says, and no other."""
    status, report, results = run_json(capsys, servers[verdict.target], *verdict.argv)
    assert report["error"] is None, report
    failed = {name for name, result in results.items() if result == "fail"}
    assert failed == verdict.findings, report
    assert status == (1 if verdict.findings else 0)
    if verdict.target.startswith("django"):  # its login page sends a logged-in session away
        assert results["login-rotates-authenticated"] == "n/a", report
        evidence = {c["id"]: c["evidence"] for c in report["checks"]}
        assert "offers no login form to a logged-in session" in evidence["login-rotates-authenticated"]
    elif not verdict.findings:
        assert results["login-rotates-authenticated"] == "pass", report
    assert report["requests"] <= 64
    assert_no_secret(json.dumps(report))


def test_second_account_tells_whose_page(servers: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """With --attacker-form, the replay of the kept session shows the victim's page: evidence says so."""
    argv = [servers["keep-bare"], *FLASK_LOGIN, *FORM, "--attacker-form", "username=bob"]
    argv += ["--attacker-form", "password=hunter2"]
    _, report, _ = run_json(capsys, *argv)
    evidence = {c["id"]: c["evidence"] for c in report["checks"]}["login-rotates-authenticated"]
    assert "his second account (--attacker-form)" in evidence
    assert "she then holds the same session=" in evidence
    assert "Profile of alice" in evidence and "it now carries her login" in evidence
    # A wrong second account is not a verdict on the app: the check could not run.
    argv[argv.index("password=hunter2")] = "password=wrong"
    status, report, _ = run_json(capsys, *argv)
    assert status == 2 and report["error"].startswith("--attacker-form: the attacker's login failed"), report
    assert "check the second account's credentials" in report["error"]


# --------------------------------------------------------------------------- Django's admin


@pytest.mark.parametrize("mode", ["bare", "protected"])
def test_django_admin_gets_no_finding(
    servers: dict[str, str], capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    login = "POST /admin/login/" if mode == "bare" else "POST /admin/login/ 302"
    argv = [servers[f"django-{mode}"], *DJANGO]
    argv[argv.index("POST /admin/login/")] = login
    status, report, results = run_json(capsys, *argv)
    assert status == 0, report
    # The hidden "next" field went along with the CSRF token, as a browser sends it.
    assert (
        report["context"]["login"]
        == f"{login.rsplit(' ', 1)[0] if mode == 'protected' else login} -> 302 -> /admin/"
    )
    assert report["context"]["anonymous_probe"] == "302 -> /admin/login/?next=/admin/"
    assert report["context"]["authenticated_probe"] == '200 "Site administration | Django site admin"'
    assert report["context"]["session_cookies"] == ["sessionid" if mode == "bare" else "fixguard"]
    # Django creates no session before login: nothing to rotate, nothing to replay. Honest n/a, not pass.
    assert results["login-rotates-id"] == "n/a" and results["pre-login-id-dead"] == "n/a"
    assert results["chosen-id-refused"] == "pass"
    assert results["logout-ends-session"] == "pass" and results["logout-id-dead"] == "pass"
    assert results["cookie-httponly"] == "pass" and results["cookie-samesite"] == "pass"
    assert "csrftoken" not in report["context"]["session_cookies"]  # the probe does not need it
    assert_no_secret(json.dumps(report))


def test_django_failed_login_is_not_a_result(
    servers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [servers["django-bare"], *DJANGO]
    argv[argv.index(f"password={DJANGO_PASSWORD}")] = "password=wrong"
    # Django answers a failed login with 200: the check sees the probe is still anonymous...
    status, report, _ = run_json(capsys, *argv)
    assert status == 2 and report["error"].startswith("login did not authenticate"), report
    # ...or, given the success status, says so at once.
    argv[argv.index("POST /admin/login/")] = "POST /admin/login/ 302"
    status, report, _ = run_json(capsys, *argv)
    assert status == 2 and report["error"].startswith("login failed: POST /admin/login/ answered 200"), report
    # Without the CSRF token Django refuses the login outright.
    no_csrf = [a for a in DJANGO if a not in ("--csrf", "csrfmiddlewaretoken")]
    status, report, _ = run_json(capsys, servers["django-bare"], *no_csrf)
    assert status == 2 and "answered 403" in report["error"] and "--csrf FIELD" in report["error"], report
    # A field the form does not have.
    wrong_field = [servers["django-bare"], *DJANGO]
    wrong_field[wrong_field.index("csrfmiddlewaretoken")] = "csrf_token"
    status, report, _ = run_json(capsys, *wrong_field)
    assert status == 2 and report["error"].startswith("--csrf csrf_token: no such hidden field"), report


# --------------------------------------------------------------------------- bearer tokens


class TokenApi:
    """A JSON API with bearer tokens; ``GET /`` hands out guest tokens.

    Vulnerable, ``POST /login`` keeps the token the client presented and binds
    it to the user (the seed's ``login_insecure``); safe, it always mints one.
    """

    def __init__(self, vulnerable: bool) -> None:
        self.vulnerable = vulnerable
        self.tokens: dict[str, str | None] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        words = environ.get("HTTP_AUTHORIZATION", "").split()
        bearer = words[1] if len(words) == 2 and words[0].lower() == "bearer" else None
        status, body = "404 Not Found", {"error": "no such page"}
        if (method, path) == ("GET", "/"):
            guest = secrets.token_urlsafe(24)
            self.tokens[guest] = None
            status, body = "200 OK", {"access_token": guest, "user": None}
        elif (method, path) == ("POST", "/login"):
            size = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(size) or b"{}")
            if (data.get("username"), data.get("password")) != ("alice", "secret"):
                status, body = "401 Unauthorized", {"error": "invalid credentials"}
            else:
                token = bearer if self.vulnerable and bearer else secrets.token_urlsafe(32)
                self.tokens[token] = "alice"
                status, body = "200 OK", {"access_token": token, "token_type": "Bearer"}
        elif (method, path) == ("GET", "/me"):
            user = self.tokens.get(bearer or "")
            status, body = ("200 OK", {"user": user}) if user else ("401 Unauthorized", {"error": "who?"})
        elif (method, path) == ("POST", "/logout"):
            self.tokens.pop(bearer or "", None)
            status, body = "200 OK", {"bye": True}
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def token_api() -> Iterator[Callable[[bool], str]]:
    """``serve(vulnerable)``: the token API on a loopback port, in a thread; its base URL."""
    running: list[tuple[WSGIServer, threading.Thread]] = []

    def serve(vulnerable: bool) -> str:
        server = make_server(HOST, 0, TokenApi(vulnerable), handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://{HOST}:{server.server_port}"

    try:
        yield serve
    finally:
        for server, thread in running:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


TOKEN_LOGIN = [
    "--login", "POST /login",
    "--json", '{"username": "alice", "password": "secret"}',
    "--token-field", "access_token",
    "--probe", "/me",
    "--logout", "POST /logout",
]  # fmt: skip


def test_bearer_token_fixation(token_api: Callable[[bool], str], capsys: pytest.CaptureFixture[str]) -> None:
    status, report, results = run_json(capsys, token_api(True), *TOKEN_LOGIN)
    assert status == 1, report
    assert results["token-chosen-refused"] == "fail"  # the login echoed the client's token
    assert results["token-pre-login-dead"] == "fail"  # the guest token became alice's
    assert results["login-rotates-id"] == "n/a" and results["cookie-httponly"] == "n/a"  # no cookie at all
    evidence = {c["id"]: c["evidence"] for c in report["checks"]}
    assert "returned the same access_token" in evidence["token-chosen-refused"]
    assert_no_secret(json.dumps(report))

    status, report, results = run_json(capsys, token_api(False), *TOKEN_LOGIN)
    assert status == 0, report
    assert results["token-chosen-refused"] == "pass" and results["token-pre-login-dead"] == "pass"
    assert results["logout-id-dead"] == "pass"
    assert_no_secret(json.dumps(report))


def test_token_field_missing(token_api: Callable[[bool], str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [token_api(False), *TOKEN_LOGIN]
    argv[argv.index("access_token")] = "data.token"
    status, report, _ = run_json(capsys, *argv)
    assert status == 2 and report["error"].startswith("--token-field data.token: the login answer"), report


# --------------------------------------------------------------------------- could not run


def test_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    status, out = run_check(capsys, f"http://{HOST}:{port}", *FLASK_LOGIN, *FORM)
    assert status == 2
    assert f"could not connect to http://{HOST}:{port}: connection refused" in out
    assert out.rstrip().endswith("Exit status 2.")


def test_login_failed(servers: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    wrong = ["--form", "username=alice", "--form", "password=wrong"]
    status, out = run_check(capsys, servers["signed-bare"], *FLASK_LOGIN, *wrong)
    assert status == 2
    assert 'login failed: POST /login answered 401 "Invalid credentials"' in out
    assert "FAIL" not in out and "PASS" not in out  # no result at all from a run that could not run


def test_probe_that_needs_no_login(servers: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [servers["signed-bare"], "--login", "POST /login", *FORM, "--probe", "/nowhere"]  # 404 for all
    status, report, _ = run_json(capsys, *argv)
    assert status == 2 and report["error"].startswith("login did not authenticate"), report


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--login", "FETCH", "--probe", "/p"], "--login 'FETCH': expected"),
        (["--login", "POST /login 2000", "--probe", "/p"], "the status must look like 302 or 3xx"),
        (["--login", "POST /login", "--probe", "p"], "--probe 'p': expected a path"),
        (["--login", "POST /login", "--probe", "/p", "--form", "user"], "--form 'user': expected NAME=VALUE"),
        (["--login", "POST /login", "--probe", "/p", "--json", "{"], "--json: not valid JSON"),
        (["--login", "POST /login", "--probe", "/p", "--basic", "alice"], "expected NAME:VALUE"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str], said: str) -> None:
    status, out = run_check(capsys, "http://127.0.0.1:9", *argv)
    assert status == 2 and said in out, out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["http://127.0.0.1:9", "--probe", "/p"]) == 2  # --login is required
    assert "the following arguments are required: --login" in capsys.readouterr().err
    assert check.main(["ftp://127.0.0.1:9", "--login", "POST /l", "--probe", "/p"]) == 2
    assert "expected http://host" in capsys.readouterr().out
