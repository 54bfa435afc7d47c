"""``fixguard check --app`` and ``fixguard.testing.audit``: the same audit, in-process.

The verdict table of :mod:`tests.check_targets` again, now with no server and
no socket: the Flask apps through :func:`fixguard.testing.audit` and the
command line's ``--app`` in this process, Django's admin through ``python -m
fixguard check --app`` in a process of its own (Django is configured once per
process, and the framework tests configure it differently).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from examples import basic_auth_app, signed_cookie_app
from fixguard import check
from fixguard.check.command import add_arguments, run_plan
from fixguard.check.plan import Plan
from fixguard.testing import Report, audit

from .check_targets import (
    DJANGO,
    DJANGO_SECOND_ACCOUNT,
    VERDICTS,
    Verdict,
    assert_no_secret,
    create_flaskr_app,
    create_keep_app,
    django_database,
    protected_flaskr_app,
    protected_keep_app,
)
from .servers import REPO

KEY = secrets.token_urlsafe(48)


def _example(module: Any, protected: bool, secure: bool = False) -> Flask:
    app = module.create_app()
    return module.protect(app, secret_key=KEY, secure=secure) if protected else app


APPS: dict[str, Callable[[], Flask]] = {
    "signed-bare": lambda: _example(signed_cookie_app, False),
    "signed-protected": lambda: _example(signed_cookie_app, True),
    "basic-bare": lambda: _example(basic_auth_app, False),
    "basic-protected": lambda: _example(basic_auth_app, True),
    "keep-bare": create_keep_app,
    "keep-protected": lambda: protected_keep_app(KEY),
    "flaskr-bare": create_flaskr_app,
    "flaskr-protected": lambda: protected_flaskr_app(KEY),
}


def in_process(app: Any, *argv: str) -> Report:
    """What ``fixguard check --app`` runs, given the app object instead of its import path."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run_plan(Plan.from_args(parser.parse_args(["--app", "test:app", *argv])), app)


def failed(report: Report) -> set[str]:
    return {r.id for r in report.findings}


@pytest.mark.parametrize("verdict", [v for v in VERDICTS if v.target in APPS], ids=lambda v: v.id)
def test_verdict_table_in_process(verdict: Verdict) -> None:
    report = in_process(APPS[verdict.target](), *verdict.argv)
    assert report.error is None, report.text()
    assert failed(report) == verdict.findings, report.text()
    assert report.exit_status == (1 if verdict.findings else 0)
    results = {r.id: r.result for r in report.results}
    if not verdict.findings:
        assert results["login-rotates-authenticated"] == "pass", report.text()
    assert_no_secret(report.text())
    assert_no_secret(json.dumps(report.as_dict()))


@pytest.fixture(scope="module")
def django_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("check-django")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FIXGUARD_", "DJANGO_"))},
        "FIXGUARD_SECRET_KEY": KEY,
        "FIXGUARD_SECURE": "0",
        "CHECKTEST_DJANGO_DB": str(workdir / "django.sqlite3"),
        "CHECKTEST_DJANGO_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "tests.django_project.settings",
    }
    django_database(env)
    return env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "extra"),
    [("bare", []), ("bare", DJANGO_SECOND_ACCOUNT), ("protected", [])],
    ids=["bare", "bare-second-account", "protected"],
)
def test_django_admin_in_process(django_env: dict[str, str], mode: str, extra: list[str]) -> None:
    """``python -m fixguard check --app``: Django's admin in the auditing process, no finding."""
    env = {**django_env, **({"CHECKTEST_DJANGO_PROTECT": "1"} if mode == "protected" else {})}
    command = [sys.executable, "-m", "fixguard", "check", "--app", "tests.django_project.wsgi:application"]
    done = subprocess.run(
        [*command, *DJANGO, *extra, "--format", "json"], cwd=REPO, env=env, capture_output=True, timeout=120
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, (report, done.stderr.decode(errors="replace"))
    results = {c["id"]: c["result"] for c in report["checks"]}
    assert results["chosen-id-refused"] == "pass" and results["logout-id-dead"] == "pass"
    assert results["login-rotates-authenticated"] == "n/a"  # the login page sends a logged-in session away
    assert report["context"]["authenticated_probe"] == '200 "Site administration | Django site admin"'
    assert report["context"]["session_cookies"] == ["sessionid" if mode == "bare" else "fixguard"]
    assert report["target"] == "tests.django_project.wsgi:application (in-process, http://localhost)"


# --------------------------------------------------------------------------- fixguard.testing.audit


def test_audit_for_an_adopters_test() -> None:
    """The README's snippet: a protected app has no finding; the same app bare has the new one."""
    form = {"username": "alice", "password": "secret"}
    report = audit(protected_keep_app(KEY), login="POST /login", probe="/profile", form=form)
    assert report.findings == []
    assert report.exit_status == 0 and report.error is None
    bare = audit(create_keep_app(), login="POST /login", probe="/profile", form=form, logout="POST /logout")
    assert [r.id for r in bare.findings] == ["login-rotates-authenticated"]
    assert bare.exit_status == 1
    document = bare.as_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["outcome"] == "findings" and document["findings"] == 1
    assert {c["id"]: c["result"] for c in document["checks"]}["logout-id-dead"] == "pass"
    assert "Exit status 1." in bare.text()


def test_audit_matches_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``--app MODULE:ATTR`` on the command line gives the same verdicts and exit status."""
    argv = ["--login", "POST /login", "--probe", "/profile", "--form", "username=alice"]
    argv += ["--form", "password=secret", "--logout", "POST /logout", "--format", "json"]
    status = check.main(["--app", "tests.check_targets:keep_app", *argv])
    document = json.loads(capsys.readouterr().out)
    report = audit(
        create_keep_app(),
        login="POST /login",
        probe="/profile",
        form={"username": "alice", "password": "secret"},
        logout="POST /logout",
    )
    assert status == report.exit_status == 1
    mine = report.as_dict()
    assert [(c["id"], c["result"]) for c in document["checks"]] == [
        (c["id"], c["result"]) for c in mine["checks"]
    ]
    assert document.keys() == mine.keys()
    assert document["target"] == "tests.check_targets:keep_app (in-process, http://localhost)"


def test_audit_with_basic_and_csrf_less_examples() -> None:
    report = audit(
        _example(basic_auth_app, False), login="POST /login", probe="/profile", basic=("alice", "secret")
    )
    assert {r.id for r in report.findings} == {
        "login-rotates-id",
        "pre-login-id-dead",
        "login-rotates-authenticated",
    }
    report = audit(
        _example(basic_auth_app, True), login="POST /login", probe="/profile", basic="alice:secret"
    )
    assert report.findings == []


def test_audit_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="app must be a WSGI application"):
        audit("not an app", login="POST /login", probe="/profile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='expected "METHOD /path"'):
        audit(create_keep_app(), login="/login", probe="/profile")


def test_app_that_raises_is_a_reason_not_a_traceback() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("database is down")

    report = audit(broken, login="POST /login", probe="/profile")
    assert report.exit_status == 2
    assert report.error == "GET /profile: the app raised RuntimeError: database is down"
    assert "Traceback" not in report.text()


def test_no_socket_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process means in-process: any socket would raise here."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the in-process audit opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    report = audit(
        _example(signed_cookie_app, True),
        login="POST /login",
        probe="/profile",
        form={"username": "alice", "password": "secret"},
    )
    assert report.findings == [] and report.error is None


# --------------------------------------------------------------------------- https, and the app's errors


def test_https_in_process_judges_secure_and_host_prefix() -> None:
    """Given an https URL, the in-process audit judges Secure and __Host- (over http both are N/A)."""
    argv = [
        "--login",
        "POST /login",
        "--probe",
        "/profile",
        "--form",
        "username=alice",
        "--form",
        "password=secret",
    ]
    protected = _example(signed_cookie_app, True, secure=True)
    report = in_process(protected, "https://localhost", *argv)
    results = {r.id: r.result for r in report.results}
    assert results["cookie-secure"] == "pass" and results["cookie-host-prefix"] == "pass", report.text()
    assert report.context["session_cookies"] == ["__Host-fixguard"]
    # The same app over plain http: the flag is there, but that is not a pass.
    report = in_process(_example(signed_cookie_app, True, secure=True), *argv)
    results = {r.id: r.result for r in report.results}
    assert results["cookie-secure"] == "n/a" and results["cookie-host-prefix"] == "n/a"
    evidence = {r.id: r.evidence for r in report.results}
    assert evidence["cookie-secure"].startswith("__Host-fixguard: Secure, but this is plain http")
    # Bare, over https: Flask's cookie has no Secure flag, and now that is a finding.
    report = in_process(_example(signed_cookie_app, False), "https://localhost", *argv)
    assert "cookie-secure" in failed(report)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("nodots", "expected MODULE:ATTR"),
        ("tests.nowhere_at_all:app", "cannot import tests.nowhere_at_all"),
        ("tests.check_targets:nothing", "tests.check_targets has no attribute nothing"),
        ("tests.check_targets:USERS", "USERS is a dict, not a WSGI application"),
        ("tests.check_targets:protected_keep_app()", "calling protected_keep_app() raised KeyError"),
    ],
)
def test_bad_app(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spec: str, said: str
) -> None:
    monkeypatch.delenv("FIXGUARD_SECRET_KEY", raising=False)
    status = check.main(["--app", spec, "--login", "POST /login", "--probe", "/p"])
    out = capsys.readouterr().out
    assert status == 2 and said in out, out
    assert "Traceback" not in out


def test_url_or_app_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--login", "POST /login", "--probe", "/p"]) == 2
    assert "give the app's URL, or --app MODULE:ATTR" in capsys.readouterr().out


# --------------------------------------------------------------------------- the README's "Test your app"


def _readme_app(protected: bool) -> Flask:
    """What the README's snippet imports as ``create_app``: alice/pw, login answers 302."""
    from flask import redirect, request, session

    from examples.basic_auth_app import DictSessionInterface

    app = Flask("readme")
    app.session_interface = DictSessionInterface({})

    @app.post("/login")
    def login() -> Any:
        if (request.form.get("username"), request.form.get("password")) != ("alice", "pw"):
            return "Invalid credentials", 401
        session["user"] = "alice"
        return redirect("/profile")

    @app.get("/profile")
    def profile() -> Any:
        return (f"Profile of {session['user']}", 200) if "user" in session else ("Not logged in", 401)

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "Logged out"

    if protected:
        from fixguard import FixGuard

        app.wsgi_app = FixGuard(  # type: ignore[method-assign]
            app.wsgi_app, secret_key=KEY, secure=False, app_cookies=("session",),
            login=("POST /login 302",), logout=("POST /logout",),
        )  # fmt: skip
    return app


def _readme_tests(protected: bool) -> dict[str, Any]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Test your app\n") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    assert "from fixguard.testing import audit" in code
    code = code.replace("from myapp import create_app\n", "")
    namespace: dict[str, Any] = {"create_app": lambda: _readme_app(protected)}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own snippet
    return {name: test for name, test in namespace.items() if name.startswith("test_")}


def test_readme_snippet_passes_for_a_protected_app() -> None:
    tests = _readme_tests(protected=True)
    assert tests
    for test in tests.values():
        test()


def test_readme_snippet_fails_for_the_bare_app() -> None:
    for test in _readme_tests(protected=False).values():
        with pytest.raises(AssertionError):
            test()


def test_flask_session_transaction_sees_nothing_in_vault_mode() -> None:
    """What the README says of ``session_transaction()``: empty, and what it writes is discarded."""
    client = _readme_app(protected=True).test_client()
    assert client.post("/login", data={"username": "alice", "password": "pw"}).status_code == 302
    assert client.get("/profile").text == "Profile of alice"
    with client.session_transaction() as session:
        assert dict(session) == {}
        session["user"] = "mallory"
    assert client.get("/profile").text == "Profile of alice"
    bare = _readme_app(protected=False).test_client()  # without fixguard it works as Flask documents
    bare.post("/login", data={"username": "alice", "password": "pw"})
    with bare.session_transaction() as session:
        assert session["user"] == "alice"
