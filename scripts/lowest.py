#!/usr/bin/env python3
"""Pins for the lowest versions fixguard's metadata allows, as a pip constraints file.

``scripts/test.sh`` installs fixguard with these constraints into a second
virtual environment and runs the suite there, so every floor in ``setup.cfg``
(``werkzeug>=3.0`` …) is a version that was installed and tested, not a guess.

Which requirements: ``install_requires`` and every extra that users install
(``redis``, ``flask``, ``django``, ``prometheus``, ``examples``, and
any extra added later), each pinned to exactly its ``>=`` floor. The tool
extras (``test``, ``dev``, ``bench``, ``asgi``) are not pinned: they are how the suite
runs, not what fixguard promises. A user-facing requirement without a floor
is an error, because then nothing says which version was tested.

Standard library only: it runs before anything is installed.
``python scripts/lowest.py [setup.cfg]`` prints the constraints.
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

#: Extras that hold the suite's own tools: their floors are not fixguard's promise.
TOOL_EXTRAS = frozenset({"test", "dev", "bench", "asgi"})  # asgi: servers and clients the tests use
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")
_FLOOR = re.compile(r"^>=\s*([0-9][0-9A-Za-z.+!-]*)$")


class NoFloor(ValueError):
    """A user-facing requirement that declares no ``>=`` floor."""


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def user_requirements(setup_cfg: Path) -> list[str]:
    """Requirement lines of ``install_requires`` and of every extra outside TOOL_EXTRAS."""
    parser = configparser.ConfigParser()  # %(redis)s in the extras interpolates like setuptools does
    parser.read(setup_cfg)
    lines = parser.get("options", "install_requires").splitlines()
    extras = parser["options.extras_require"]
    for extra in extras:
        if extra not in TOOL_EXTRAS:
            lines += extras[extra].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def floors(requirements: list[str]) -> dict[str, str]:
    """Each requirement's name and ``>=`` floor; NoFloor if one has none (or two disagree)."""
    found: dict[str, str] = {}
    for line in requirements:
        match = _REQUIREMENT.match(line)
        if match is None:
            raise NoFloor(f"cannot read the requirement {line!r}")
        name, specifiers = normalise(match.group(1)), match.group(3)
        floor = None
        for part in specifiers.split(","):
            m = _FLOOR.match(part.strip())
            if m:
                floor = m.group(1)
        if floor is None:
            raise NoFloor(f"{line!r} declares no floor (name>=version): say which version is tested")
        if found.setdefault(name, floor) != floor:
            raise NoFloor(f"{name} has two floors, {found[name]} and {floor}: keep one")
    return found


def constraints(setup_cfg: Path) -> str:
    """The constraints file: ``name==floor`` per line, sorted."""
    pins = floors(user_requirements(setup_cfg))
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "setup.cfg"
    try:
        sys.stdout.write(constraints(path))
    except (NoFloor, configparser.Error) as exc:
        print(f"scripts/lowest.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
