"""``fixguard check`` options: credentials out of argv, refused in the URL, and the version.

Run in-process against the keep app of :mod:`tests.check_targets` (the
option handling is the same whatever carries the requests), wrapped where a
test needs to see what the app received.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixguard import check
from fixguard.check.command import user_agent

from .check_targets import create_keep_app
from .servers import REPO

LONG_PASSWORD = "correct-horse-battery-staple-42"
LOGIN = ["--login", "POST /login", "--probe", "/profile", "--logout", "POST /logout"]


class Recorder:
    """The keep app (alice's password :data:`LONG_PASSWORD`), noting each request's headers.

    With ``api_key``, a request without ``X-Api-Key: <api_key>`` gets 403, as
    behind an API gateway.
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.app = create_keep_app({"alice": LONG_PASSWORD, "bob": "hunter2"})
        self.api_key = api_key
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append({k: v for k, v in environ.items() if k.startswith("HTTP_")})
        if self.api_key is not None and environ.get("HTTP_X_API_KEY") != self.api_key:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"no key"]
        return self.app(environ, start_response)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """A :class:`Recorder` importable as ``tests.test_check_options:APP`` for ``--app``."""
    app = Recorder()
    monkeypatch.setitem(globals(), "APP", app)
    return app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = check.main(["--app", "tests.test_check_options:APP", *argv])
    return status, capsys.readouterr().out


def test_form_password_from_env_and_file(
    recorder: Recorder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHECK_TEST_PASSWORD", LONG_PASSWORD)
    status, out = run(
        capsys, *LOGIN, "--form", "username=alice", "--form", "password=@env:CHECK_TEST_PASSWORD"
    )
    assert status == 1 and out.rstrip().endswith("1 finding, 1 warning. Exit status 1.")  # it ran
    assert 'POST /login -> 200 "Logged in as alice"' in out
    assert LONG_PASSWORD not in out and "@env:CHECK_TEST_PASSWORD" not in out

    secret = tmp_path / "password"
    secret.write_text(LONG_PASSWORD + "\n")  # as `echo` writes it: the newline is not part of it
    status, out = run(capsys, *LOGIN, "--form", "username=alice", "--form", f"password=@file:{secret}")
    assert status == 1 and 'POST /login -> 200 "Logged in as alice"' in out, out
    assert LONG_PASSWORD not in out


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("@env:CHECK_TEST_UNSET", "--form password=@env:CHECK_TEST_UNSET: the environment variable "
         "CHECK_TEST_UNSET is not set"),
        ("@env:CHECK_TEST_EMPTY", "the environment variable CHECK_TEST_EMPTY is empty"),
        ("@env:NOT-A-NAME", "'NOT-A-NAME' is not an environment variable name"),
        ("@file:/nonexistent/pw", "--form password=@file:/nonexistent/pw: cannot read the file"),
    ],
)  # fmt: skip
def test_bad_references_say_which(
    recorder: Recorder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    said: str,
) -> None:
    monkeypatch.delenv("CHECK_TEST_UNSET", raising=False)
    monkeypatch.setenv("CHECK_TEST_EMPTY", "")
    status, out = run(capsys, *LOGIN, "--form", "username=alice", "--form", f"password={value}")
    assert status == 2 and said in out, out
    assert recorder.seen == []  # refused before the first request


def test_empty_file_is_refused(
    recorder: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    argv = ["--form", "username=alice", "--form", f"password=@file:{empty}", "--format", "json"]
    status, out = run(capsys, *LOGIN, *argv)
    assert status == 2 and json.loads(out)["error"].endswith(": the file is empty"), out


def test_basic_and_header_references(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples import basic_auth_app

    monkeypatch.setenv("CHECK_TEST_PW", "secret")
    monkeypatch.setenv("CHECK_TEST_CREDENTIALS", "alice:secret")
    monkeypatch.setitem(globals(), "APP", basic_auth_app.create_app())
    for basic in ("alice:@env:CHECK_TEST_PW", "@env:CHECK_TEST_CREDENTIALS"):
        status, out = run(capsys, *LOGIN, "--basic", basic)
        assert status == 1 and 'POST /login -> 200 "Logged in as alice"' in out, out

    api_key = "gateway-key-0123456789-abcdef"
    gated = Recorder(api_key=api_key)
    monkeypatch.setitem(globals(), "APP", gated)
    monkeypatch.setenv("CHECK_TEST_API_KEY", api_key)
    form = ["--form", "username=alice", "--form", f"password={LONG_PASSWORD}"]
    status, out = run(
        capsys, *LOGIN, *form, "--header", "X-Api-Key: @env:CHECK_TEST_API_KEY", "--format", "json"
    )
    assert status == 1, out
    assert all(seen.get("HTTP_X_API_KEY") == api_key for seen in gated.seen)  # on every request
    assert api_key not in out and LONG_PASSWORD not in out
    status, out = run(capsys, *LOGIN, *form)  # without it, the gateway says no: could not run
    assert status == 2


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--header", "Cookie: a=b"], "--header Cookie: the check sets this header itself"),
        (["--header", "no colon"], "expected NAME: VALUE"),
        (["--header", "Bad Name: x"], "not a header name"),
        (
            ["--basic", "alice:pw", "--header", "Authorization: x"],
            "--basic and --token-field use that header",
        ),
        (
            ["--basic", "alice:pw", "--attacker-form", "username=bob"],
            "--attacker-form: names fields of a form",
        ),
    ],
)
def test_bad_options(
    recorder: Recorder, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    status, out = run(capsys, *LOGIN, *argv)
    assert status == 2 and said in out, out


@pytest.mark.parametrize("output", ["text", "json"])
def test_credentials_in_the_url_are_refused(capsys: pytest.CaptureFixture[str], output: str) -> None:
    status = check.main(["http://alice:hunter2-secret@127.0.0.1:9/app", *LOGIN, "--format", output])
    out = capsys.readouterr().out
    assert status == 2
    assert "credentials in the URL are refused" in out and "--basic USER:@env:NAME" in out
    assert "hunter2" not in out and "alice:" not in out
    assert "http://127.0.0.1:9/app" in out  # the target, without them
    if output == "json":
        assert json.loads(out)["target"] == "http://127.0.0.1:9/app"


def test_version_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    installed = importlib.metadata.version("fixguard")
    done = subprocess.run(
        [sys.executable, "-m", "fixguard", "--version"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == f"fixguard {installed}", done
    import fixguard

    assert fixguard.__version__ == installed
    assert user_agent() == f"fixguard-check/{installed} (+OWASP WSTG-SESS-03)"


def test_user_agent_is_sent(recorder: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, *LOGIN, "--form", "username=alice", "--form", f"password={LONG_PASSWORD}")
    assert recorder.seen and {seen["HTTP_USER_AGENT"] for seen in recorder.seen} == {user_agent()}


def test_json_body_from_a_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from .test_check import TOKEN_LOGIN, TokenApi

    body = tmp_path / "login.json"
    body.write_text('{"username": "alice", "password": "secret"}\n')
    argv = list(TOKEN_LOGIN)
    argv[argv.index("--json") + 1] = f"@file:{body}"
    for vulnerable, expected in ((False, 0), (True, 1)):
        monkeypatch.setitem(globals(), "APP", TokenApi(vulnerable))
        status, out = run(capsys, *argv)
        assert status == expected, out
