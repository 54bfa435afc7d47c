"""Option values that keep credentials out of argv: ``@env:NAME`` and ``@file:PATH``.

A command line is visible to every user of the machine (``ps``) and often
lands in a CI log or a shell history; a password given as ``--form
password=secret`` is in all of them. So a value of ``--form``,
``--attacker-form``, ``--basic`` or ``--header`` (or the whole ``--json``
body) may instead *name* where the secret is: ``password=@env:APP_PASSWORD`` reads the environment variable,
``password=@file:/run/secrets/pw`` reads the file (one trailing newline
dropped, at most 64 KiB). A value read this way is treated as a secret: it is
masked wherever the report would show it. A missing variable, an empty value
or an unreadable file is an error that says which option and which name;
the value itself is never printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .report import CheckError

ENV, FILE = "@env:", "@file:"
_MAX_FILE = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Value:
    """A resolved option value; ``secret`` when it came from ``@env:`` or ``@file:``."""

    text: str
    secret: bool = False


def resolve(value: str, where: str) -> Value:
    """``value`` itself, or what its ``@env:NAME`` / ``@file:PATH`` reference names.

    ``where`` names the option in error messages (``--form password``).
    """
    if value.startswith(ENV):
        name = value[len(ENV) :]
        if not _ENV_NAME.fullmatch(name):
            raise CheckError(f"{where}={value}: {name!r} is not an environment variable name")
        found = os.environ.get(name)
        if found is None:
            raise CheckError(f"{where}={value}: the environment variable {name} is not set")
        if not found:
            raise CheckError(f"{where}={value}: the environment variable {name} is empty")
        return Value(found, secret=True)
    if value.startswith(FILE):
        path = value[len(FILE) :]
        if not path:
            raise CheckError(f"{where}={value}: give the file's path after {FILE}")
        try:
            with open(path, "rb") as handle:
                data = handle.read(_MAX_FILE + 1)
        except OSError as exc:
            raise CheckError(f"{where}={value}: cannot read the file ({exc.strerror or exc})") from None
        if len(data) > _MAX_FILE:
            raise CheckError(f"{where}={value}: the file is larger than {_MAX_FILE // 1024} KiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckError(f"{where}={value}: the file is not UTF-8 text") from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise CheckError(f"{where}={value}: the file is empty")
        return Value(text, secret=True)
    return Value(value)


def pair(text: str, option: str, sep: str = "=") -> tuple[str, Value]:
    """``NAME<sep>VALUE`` with the value resolved (:func:`resolve`)."""
    name, found, value = text.partition(sep)
    if not found or not name.strip():
        raise CheckError(f"{option} {_shown(text)!r}: expected NAME{sep}VALUE")
    return name, resolve(value, f"{option} {name}")


def basic(text: str) -> tuple[str, Value]:
    """``--basic USER:PASS``; PASS, or the whole ``USER:PASS``, may be a reference."""
    if text.startswith((ENV, FILE)):
        whole = resolve(text, "--basic")
        user, found, password = whole.text.partition(":")
        if not found or not user:
            raise CheckError(f"--basic {text}: the value it names must be USER:PASS")
        return user, Value(password, secret=True)
    user, found, password = text.partition(":")
    if not found or not user:
        raise CheckError(f"--basic {_shown(text)!r}: expected NAME:VALUE (USER:PASS)")
    return user, resolve(password, "--basic password")


def _shown(text: str) -> str:
    """An option as typed, cut short: it may hold a password typed in the wrong place."""
    return text if len(text) <= 12 else text[:12] + "…"
