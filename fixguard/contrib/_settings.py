"""fixguard's settings from a framework's own configuration: Flask's ``app.config``, Django's settings.

The names are FixGuard's keywords, the values Python values (a framework's
configuration is Python, not text), checked by FixGuard itself. A name that
is not a setting is refused with the closest one, as for ``FIXGUARD_*``
variables: a typo must not leave a security setting at its default.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from ..config import ConfigError
from ..middleware import FixGuard


def keywords() -> list[str]:
    """Every setting FixGuard takes, by its Python name."""
    return [name for name in inspect.signature(FixGuard).parameters if name != "app"]


def default(name: str, fallback: Any = None) -> Any:
    """FixGuard's default for ``name`` (``fallback`` when this version has no such setting)."""
    parameter = inspect.signature(FixGuard).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return fallback
    return parameter.default


def read_settings(values: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """``values`` as FixGuard keywords. With ``prefix`` (``"FIXGUARD_"``), keys are upper-case names.

    ``where`` names the source in messages (``app.config``, ``settings.FIXGUARD``).
    """
    known = keywords()
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: {key!r} is not a setting name")
        name = key[len(prefix) :].lower() if prefix else key
        if name not in known or (prefix and key != prefix + name.upper()):

            def spell(n: str) -> str:
                return prefix + n.upper() if prefix else n

            guess = difflib.get_close_matches(name.lower(), known, 1, 0.7)
            hint = f" Did you mean {spell(guess[0])}?" if guess else ""
            raise ConfigError(
                f"{key} ({where}) is not a fixguard setting.{hint} "
                f"The settings are: {', '.join(spell(n) for n in known)}"
            )
        out[name] = value
    return out
