"""Settings and their validation.

Everything a deployment can get wrong is checked here, once, at start-up, and
refused with a message that names the setting and what is allowed: a weak
key, a ``__Host-`` cookie without ``Secure``, timeouts that contradict each
other, rules that do not parse. A misconfigured guard must not start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .signals import Rule, RuleError, parse_rule

MIN_KEY_BYTES = 32

# Placeholders that ship in docs, templates and tutorials. A key containing one
# was never meant for production.
_PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "replace_me",
    "your-secret-key",
    "your_secret_key",
    "yoursecretkey",
    "django-insecure",
    "placeholder",
    "super-secret-key",
    "supersecretkey",
    "notasecret",
    "not-a-secret",
    "fixguard-example-key",
)
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


class ConfigError(ValueError):
    """A setting that fixguard refuses to start with."""


def check_key(name: str, key: str | bytes) -> bytes:
    """A secret as bytes, or ConfigError if it is short, empty or a known placeholder."""
    if isinstance(key, str):
        raw = key.encode("utf-8")
    elif isinstance(key, bytes):
        raw = key
    else:
        raise ConfigError(f"{name} must be str or bytes, not {type(key).__name__}")
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{name} is {len(raw)} bytes; it must be at least {MIN_KEY_BYTES} random bytes. "
            'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    lowered = raw.lower()
    for word in _PLACEHOLDERS:
        if word.encode() in lowered:
            raise ConfigError(
                f"{name} contains the well-known placeholder {word!r}: use a random key, e.g. "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
    return raw


def _names(setting: str, value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for name in out:
        if not isinstance(name, str) or not _COOKIE_NAME.match(name):
            raise ConfigError(f"{setting}: {name!r} is not a valid cookie name")
    return out


def _rules(signal: str, value: Iterable[str] | str) -> tuple[Rule, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        return tuple(parse_rule(signal, text) for text in value)
    except RuleError as exc:
        raise ConfigError(str(exc)) from None


def _token_fields(value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for path in out:
        if not isinstance(path, str) or not all(part.strip() == part and part for part in path.split(".")):
            raise ConfigError(
                f"token_fields: {path!r} is not a dotted JSON path like 'access_token' or 'data.token'"
            )
    if len(set(out)) != len(out):
        raise ConfigError("token_fields lists a path twice")
    return out


def _positive(setting: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(f"{setting} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Settings:
    """FixGuard's validated settings. Build with :meth:`Settings.build`."""

    secret_key: bytes
    fallback_keys: tuple[bytes, ...]
    app_cookies: tuple[str, ...]
    login: tuple[Rule, ...]
    logout: tuple[Rule, ...]
    elevate: tuple[Rule, ...]
    cookie_name: str
    secure: bool
    samesite: str
    idle_timeout: float
    absolute_timeout: float
    on_fixation: str
    settle_time: float
    harden_cookies: bool
    script_cookies: tuple[str, ...]
    max_cookie_header: int
    max_cookies: int
    renew_after: float | None
    renew_grace: float
    token_fields: tuple[str, ...]
    token_passthrough: tuple[Rule, ...]
    max_token_body: int
    on_event: Callable[[Any], None] | None = field(default=None, compare=False)

    @classmethod
    def build(
        cls,
        *,
        secret_key: str | bytes | None,
        fallback_keys: Iterable[str | bytes] = (),
        app_cookies: Iterable[str] | str = ("session",),
        login: Iterable[str] | str = ("POST /login",),
        logout: Iterable[str] | str = ("POST /logout",),
        elevate: Iterable[str] | str = (),
        cookie_name: str | None = None,
        secure: bool = True,
        samesite: str = "Lax",
        idle_timeout: float = 1800,
        absolute_timeout: float = 43200,
        on_fixation: str = "reject",
        on_event: Callable[[Any], None] | None = None,
        settle_time: float = 0.02,
        harden_cookies: bool = False,
        script_cookies: Iterable[str] | str = (),
        max_cookie_header: int = 16384,
        max_cookies: int = 128,
        renew_after: float | None = None,
        renew_grace: float = 30,
        token_fields: Iterable[str] | str = (),
        token_passthrough: Iterable[str] | str = (),
        max_token_body: int = 1024 * 1024,
    ) -> Settings:
        """Validate every setting; raise ConfigError naming the first bad one."""
        if secret_key is None:
            raise ConfigError(
                "secret_key is required: pass at least 32 random bytes, e.g. "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        key = check_key("secret_key", secret_key)
        if isinstance(fallback_keys, str | bytes):
            fallback_keys = (fallback_keys,)
        fallbacks = tuple(check_key(f"fallback_keys[{i}]", k) for i, k in enumerate(fallback_keys))
        if not isinstance(secure, bool):
            raise ConfigError(f"secure must be True or False, got {secure!r}")
        name = cookie_name if cookie_name is not None else ("__Host-fixguard" if secure else "fixguard")
        if not isinstance(name, str) or not _COOKIE_NAME.match(name):
            raise ConfigError(f"cookie_name {name!r} is not a valid cookie name")
        if name.lower().startswith(("__host-", "__secure-")) and not secure:
            raise ConfigError(
                f"cookie_name {name!r} needs Secure, which browsers only accept over https: "
                "set secure=True, or for plain-http development a name without the __Host-/__Secure- prefix"
            )
        apps = _names("app_cookies", app_cookies)
        if name in apps:
            raise ConfigError(f"cookie_name {name!r} is also listed in app_cookies: they must differ")
        site = _SAMESITE.get(str(samesite).lower()) if isinstance(samesite, str) else None
        if site is None:
            raise ConfigError(f"samesite must be 'Strict', 'Lax' or 'None', got {samesite!r}")
        if site == "None" and not secure:
            raise ConfigError("samesite='None' requires secure=True: browsers reject it otherwise")
        idle = _positive("idle_timeout", idle_timeout)
        absolute = _positive("absolute_timeout", absolute_timeout)
        if absolute < idle:
            raise ConfigError(
                f"absolute_timeout ({absolute:g}s) is shorter than idle_timeout ({idle:g}s): "
                "raise absolute_timeout or lower idle_timeout"
            )
        if on_fixation not in ("reject", "strip"):
            raise ConfigError(f"on_fixation must be 'reject' or 'strip', got {on_fixation!r}")
        if on_event is not None and not callable(on_event):
            raise ConfigError("on_event must be a callable taking one event, or None")
        if isinstance(settle_time, bool) or not isinstance(settle_time, int | float) or not (
            0 <= settle_time <= 5
        ):
            raise ConfigError(f"settle_time must be between 0 and 5 seconds, got {settle_time!r}")
        for setting, value in (("max_cookie_header", max_cookie_header), ("max_cookies", max_cookies)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{setting} must be a positive integer, got {value!r}")
        renew = None if renew_after is None else _positive("renew_after", renew_after)
        grace = _positive("renew_grace", renew_grace)
        if renew is not None and renew >= absolute:
            raise ConfigError(
                f"renew_after ({renew:g}s) must be shorter than absolute_timeout ({absolute:g}s), "
                "or None to never renew"
            )
        if renew is not None and grace > idle:
            raise ConfigError(f"renew_grace ({grace:g}s) must not exceed idle_timeout ({idle:g}s)")
        fields = _token_fields(token_fields)
        if isinstance(max_token_body, bool) or not isinstance(max_token_body, int) or max_token_body < 1:
            raise ConfigError(f"max_token_body must be a positive number of bytes, got {max_token_body!r}")
        login_rules = _rules("login", login)
        logout_rules = _rules("logout", logout)
        elevate_rules = _rules("elevate", elevate)
        seen: dict[tuple[str, str, str | None], str] = {}
        for rule in (*login_rules, *logout_rules, *elevate_rules):
            spot = (rule.method, rule.path, rule.status)
            if spot in seen and seen[spot] != rule.signal:
                raise ConfigError(
                    f"rule {rule.text!r} is both a {seen[spot]} and a {rule.signal} rule: keep one"
                )
            seen[spot] = rule.signal
        return cls(
            secret_key=key,
            fallback_keys=fallbacks,
            app_cookies=apps,
            login=login_rules,
            logout=logout_rules,
            elevate=elevate_rules,
            cookie_name=name,
            secure=secure,
            samesite=site,
            idle_timeout=idle,
            absolute_timeout=absolute,
            on_fixation=on_fixation,
            settle_time=float(settle_time),
            harden_cookies=bool(harden_cookies),
            script_cookies=_names("script_cookies", script_cookies),
            max_cookie_header=max_cookie_header,
            max_cookies=max_cookies,
            renew_after=renew,
            renew_grace=grace,
            token_fields=fields,
            token_passthrough=_rules("token_passthrough", token_passthrough),
            max_token_body=max_token_body,
            on_event=on_event,
        )
