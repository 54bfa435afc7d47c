"""Packaging that tells the truth: tested floors, one version, a license in the wheel.

The lowest-versions step of ``scripts/test.sh`` runs this whole suite a second
time in ``.venv-lowest``, with every user-facing requirement pinned to exactly
the floor ``setup.cfg`` declares (``scripts/lowest.py``). There,
``FIXGUARD_LOWEST`` names the constraints file, and
:func:`test_installed_versions_are_the_declared_floors` proves the floors are what
is installed, so a green run means the floors were tested.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fixguard
from fixguard.cli import main

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lowest", REPO / "scripts" / "lowest.py")
assert _spec is not None and _spec.loader is not None
lowest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lowest)

USER_FACING = {"werkzeug", "itsdangerous", "redis", "hiredis", "flask", "django", "prometheus-client"}
USER_FACING |= {"gunicorn", "cryptography"}  # the browser extra: fixguard demo --browser serves the examples


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def _release(version: str) -> tuple[int, ...]:
    """``"3.0"`` and ``"3.0.0"`` alike: the numeric release, trailing zeros dropped."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:4]]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


# -- one version source ------------------------------------------------------------------


def test_version_comes_from_the_installed_metadata() -> None:
    declared = _setup_cfg()["metadata"]["version"]
    assert fixguard.__version__ == importlib.metadata.version("fixguard") == declared
    source = (REPO / "fixguard" / "__init__.py").read_text()
    assert declared not in source, "the version is written in setup.cfg only"


def test_the_cli_says_the_same_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"fixguard {fixguard.__version__}"


# -- license and classifiers --------------------------------------------------------------


def test_license_file_and_metadata_agree() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    meta = _setup_cfg()["metadata"]
    assert meta["license"] == "MIT" and meta["license_files"].strip() == "LICENSE"
    classifiers = meta["classifiers"].split("\n")
    for wanted in (
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3.11",
        "Framework :: Flask",
        "Framework :: Django",
        "Typing :: Typed",
    ):
        assert wanted in classifiers, wanted
    assert any(c.startswith("Development Status :: ") for c in classifiers)


@pytest.mark.slow
def test_the_wheel_carries_the_license_and_classifiers(tmp_path: Path) -> None:
    """Build a real wheel from a copy of the sources (the tree stays clean) and read it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "fixguard", src / "fixguard", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("fixguard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licenses = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
        assert licenses, names
        assert archive.read(licenses[0]).decode().startswith("MIT License")
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "fixguard/py.typed" in names
    assert "Classifier: License :: OSI Approved :: MIT License" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert f"Version: {fixguard.__version__}\n" in metadata


# -- extras: what users install, what tests need, what developers use ---------------------


def _extra(name: str) -> set[str]:
    lines = _setup_cfg()["options.extras_require"][name].split("\n")
    return {lowest.normalise(re.split(r"[<>=!~\[ ;]", line.strip())[0]) for line in lines if line.strip()}


def test_dev_tools_live_in_dev_not_in_test() -> None:
    assert {"ruff", "mypy", "flask-session", "beaker"} <= _extra("dev")
    assert not {"ruff", "mypy", "flask-session", "beaker"} & _extra("test")
    assert {"pytest", "webtest", "prometheus-client", "django", "flask", "redis"} <= _extra("test")
    assert "'.[test,dev]'" in (REPO / "scripts" / "test.sh").read_text()


def test_every_extra_of_contrib_exists() -> None:
    assert _extra("flask") == {"flask"}
    assert _extra("django") == {"django"}
    assert _extra("prometheus") == {"prometheus-client"}
    assert _extra("browser") == {"gunicorn", "cryptography"}  # fixguard demo --browser


# -- the lowest-versions step ---------------------------------------------------------------


def test_every_user_facing_floor_is_pinned_for_the_lowest_run() -> None:
    pins = dict(line.split("==") for line in lowest.constraints(REPO / "setup.cfg").splitlines())
    assert set(pins) >= USER_FACING, USER_FACING - set(pins)
    assert not {"pytest", "ruff", "mypy", "webtest"} & set(pins), "tools are not pinned"
    # floors raised because the lower ones fail (see the README's Development section)
    assert _release(pins["redis"]) >= (6,), "redis-py 5.x: TypeError in the pooled GET, no retry"
    assert _release(pins["hiredis"]) >= (3,), "redis-py 6 ignores hiredis < 3"


def test_a_requirement_without_a_floor_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "setup.cfg"
    cfg.write_text(
        "[options]\ninstall_requires =\n    werkzeug>=3.0\n"
        "[options.extras_require]\nredis =\n    redis\ntest =\n    pytest\n"
    )
    with pytest.raises(lowest.NoFloor, match="'redis' declares no floor"):
        lowest.constraints(cfg)
    cfg.write_text("[options]\ninstall_requires =\n    werkzeug>=3.0,<4\n[options.extras_require]\n")
    assert lowest.constraints(cfg) == "werkzeug==3.0\n"


def test_the_ci_script_runs_the_suite_again_at_the_floors() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "scripts/lowest.py > .venv-lowest/constraints.txt" in script
    assert "-c .venv-lowest/constraints.txt -e '.[test]'" in script
    assert 'FIXGUARD_LOWEST="$PWD/.venv-lowest/constraints.txt"' in script
    assert "exec ./scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_installed_versions_are_the_declared_floors() -> None:
    """In the lowest run: exactly the floors. In the normal run: at least the floors."""
    constraints = os.environ.get("FIXGUARD_LOWEST")
    text = Path(constraints).read_text() if constraints else lowest.constraints(REPO / "setup.cfg")
    pins = dict(line.split("==") for line in text.splitlines() if line)
    assert set(pins) >= USER_FACING
    for name, floor in pins.items():
        installed = importlib.metadata.version(name)
        if constraints:
            assert _release(installed) == _release(floor), (name, installed, floor)
        else:
            assert _release(installed) >= _release(floor), (name, installed, floor)


def test_hiredis_is_the_parser_redis_py_uses() -> None:
    """A hiredis floor means something only if the redis-py floor uses that hiredis."""
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE
