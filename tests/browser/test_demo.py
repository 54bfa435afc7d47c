"""``fixguard demo --browser``: the attack in Chromium, its screenshots; what to install when missing."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixguard import cli
from fixguard.demo_browser import run_browser_demo

from ..servers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PNG = b"\x89PNG\r\n\x1a\n"


def test_browser_demo_exploits_bare_and_blocks_protected(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    out = io.StringIO()
    assert run_browser_demo(out, folder) == 0, out.getvalue()
    text = out.getvalue()
    assert text.count("EXPLOITED") == 2 and text.count("BLOCKED") == 2, text
    assert f"{folder}/" in text
    for example in ("signed_cookie_app", "basic_auth_app"):
        for mode in ("bare", "protected"):
            shots = sorted(p.name for p in folder.glob(f"{example}-{mode}-*.png"))
            assert [name.split("-", 3)[2] for name in shots] == ["1", "2", "3", "4"], shots
            assert all((folder / name).read_bytes().startswith(PNG) for name in shots)
    replays = re.findall(r"4\. attacker reloads /profile -> (\d+) \"(.*)\"", text)
    assert replays[0::2] == [("200", "Profile of alice")] * 2, replays  # bare
    assert [status for status, _ in replays[1::2]] == ["401"] * 2, replays  # protected: fixguard's refusal
    assert text.count("fixguard: fixation_blocked") == 2, text
    # Cookie values are cut short: no long opaque token is ever printed whole.
    said = [line for line in text.replace(str(folder), "").splitlines() if "screenshot:" not in line]
    assert not re.search(r"[A-Za-z0-9_\-]{20,}", "\n".join(said)), text


def test_browser_demo_without_chromium_says_what_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no browser on it
    done = subprocess.run(
        [sys.executable, "-m", "fixguard", "demo", "--browser", "--out", str(tmp_path / "shots")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "Chromium is not installed" in done.stdout and "apt-get install chromium" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "shots").exists()


@pytest.mark.parametrize("missing", ["gunicorn", "cryptography"])
def test_browser_demo_without_its_packages_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    real = importlib.util.find_spec

    def without(name: str, *args: Any) -> Any:
        return None if name == missing else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without)
    out = io.StringIO()
    assert run_browser_demo(out) == 2
    assert f"needs {missing}" in out.getvalue()
    assert "pip install -e '.[examples,browser]'" in out.getvalue()


def test_out_is_only_for_the_browser_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--out", "shots"])
    assert exit_.value.code == 2
    assert "--out is only for --browser" in capsys.readouterr().err
