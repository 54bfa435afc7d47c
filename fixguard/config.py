"""Settings and their validation.

Everything a deployment can get wrong is checked here, once, at start-up, and
refused with a message that names the setting and what is allowed: a weak
key, a ``__Host-`` cookie without ``Secure``, timeouts that contradict each
other, rules that do not parse. A misconfigured guard must not start.

The same settings can come from ``FIXGUARD_*`` environment variables and from
a TOML file (:func:`read_env`, :func:`read_file`, :func:`read_deployment`):
one table, :data:`OPTIONS`, gives every setting its one name and its type, so
the Python keyword, the TOML key and the variable cannot drift apart.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
#: Field-name fragments that mark a body as carrying credentials (matched as "name contains").
DEFAULT_CREDENTIAL_FIELDS = ("password", "passwd", "passphrase", "pwd")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
# reject_redirect: visible ASCII but backslash (browsers read /\evil as //evil)
_REDIRECT = re.compile(r"[\x21-\x5b\x5d-\x7e]+")


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


def _redirect_target(value: Any) -> str | None:
    """``reject_redirect``: a path on this site or an absolute http(s) URL, nothing a header can't carry."""
    if value is None:
        return None
    local = isinstance(value, str) and value[:1] == "/" and value[1:2] != "/"
    absolute = isinstance(value, str) and value.startswith(("https://", "http://"))
    if (local or absolute) and _REDIRECT.fullmatch(value):
        return str(value)
    raise ConfigError(
        f"reject_redirect must be a path on this site like '/login' (not '//host…') or an absolute "
        f"http(s) URL, without spaces or control characters; got {value!r}"
    )


def _cookie_max_age(value: Any, absolute: float) -> float | None:
    """``cookie_max_age``: None (a browser-session cookie) or seconds, never beyond absolute_timeout."""
    if value is None:
        return None
    age = _positive("cookie_max_age", value)
    if age > absolute:
        raise ConfigError(
            f"cookie_max_age ({age:.12g}s) is longer than absolute_timeout ({absolute:.12g}s), which ends "
            "every session whatever the cookie says: raise absolute_timeout to at least "
            f"{age:.12g} (and idle_timeout to match, for a 'remember me' session), or lower cookie_max_age"
        )
    return age


@dataclass(frozen=True, slots=True)
class Settings:
    """FixGuard's validated settings. Build with :meth:`Settings.build`.

    Slotted, and the keys left out of ``repr()``: error reporters that record
    what a frame's locals reach must not find the secret key.
    """

    secret_key: bytes = field(repr=False)
    fallback_keys: tuple[bytes, ...] = field(repr=False)
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
    detect_logins: bool = True
    credential_fields: tuple[str, ...] = DEFAULT_CREDENTIAL_FIELDS
    max_detect_body: int = 65536
    on_event: Callable[[Any], None] | None = field(default=None, compare=False)
    reject_redirect: str | None = None
    cookie_max_age: float | None = None
    on_reject: Callable[[Any], Any] | None = field(default=None, compare=False)

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
        detect_logins: bool = True,
        credential_fields: Iterable[str] | str = DEFAULT_CREDENTIAL_FIELDS,
        max_detect_body: int = 65536,
        reject_redirect: str | None = None,
        cookie_max_age: float | None = None,
        on_reject: Callable[[Any], Any] | None = None,
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
        if not isinstance(detect_logins, bool):
            raise ConfigError(f"detect_logins must be True or False, got {detect_logins!r}")
        if isinstance(credential_fields, str):
            credential_fields = (credential_fields,)
        needles = tuple(credential_fields)
        for needle in needles:
            if not isinstance(needle, str) or not needle.strip() or needle != needle.strip():
                raise ConfigError(
                    f"credential_fields: {needle!r} is not a field name fragment like 'password'"
                )
        if isinstance(max_detect_body, bool) or not isinstance(max_detect_body, int) or max_detect_body < 1:
            raise ConfigError(f"max_detect_body must be a positive number of bytes, got {max_detect_body!r}")
        if on_reject is not None and not callable(on_reject):
            raise ConfigError("on_reject must be a callable taking one fixguard.responses.Rejection, or None")
        cookie_age = _cookie_max_age(cookie_max_age, absolute)
        login_rules = _rules("login", login)
        logout_rules = _rules("logout", logout)
        elevate_rules = _rules("elevate", elevate)
        seen: dict[tuple[str, str], Rule] = {}
        for rule in (*login_rules, *logout_rules, *elevate_rules):
            spot = (rule.method, rule.path)
            other = seen.setdefault(spot, rule)
            if other.signal != rule.signal:
                raise ConfigError(
                    f"{other.signal} rule {other.text!r} and {rule.signal} rule {rule.text!r} both name "
                    f"the same request ({rule.method} {rule.path}; runs of '/' and a trailing '/' do not "
                    "count): one request cannot be two signals, keep one"
                )
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
            detect_logins=detect_logins,
            credential_fields=tuple(dict.fromkeys(n.lower() for n in needles)),
            max_detect_body=max_detect_body,
            on_event=on_event,
            reject_redirect=_redirect_target(reject_redirect),
            cookie_max_age=cookie_age,
            on_reject=on_reject,
        )


# -- configuration without code: FIXGUARD_* variables and TOML files -------------------------

ENV_PREFIX = "FIXGUARD_"
#: Names a TOML file that :func:`read_deployment` reads before the variables.
CONFIG_ENV = "FIXGUARD_CONFIG"
#: The table of a TOML file that holds fixguard's settings; the rest of the file is not ours.
TOML_TABLE = "fixguard"
#: ``FIXGUARD_*`` variables that are not settings (every other one must be).
RESERVED_ENV = frozenset({CONFIG_ENV})
DEFAULT_REDIS_PREFIX = "fixguard:"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


class _Bad(ValueError):
    """A value of the wrong form; the caller names the setting and what is allowed."""


@dataclass(frozen=True)
class Kind:
    """A setting's value type: what is allowed, and how to read it from a variable and from TOML."""

    allowed: str
    from_text: Callable[[str], Any]
    from_toml: Callable[[Any], Any]


def _text(text: Any) -> str:
    if not isinstance(text, str) or not text:
        raise _Bad
    return text


def _key_text(text: Any) -> str:
    if not isinstance(text, str):
        raise _Bad
    return text  # check_key then says what is wrong with it: length, placeholder


def _bool_text(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise _Bad


def _bool_toml(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad
    return value


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise _Bad
    return number


def _number_text(text: str) -> float:
    try:
        return _finite(float(text))
    except ValueError:
        raise _Bad from None


def _number_toml(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad
    return _finite(value)


def _optional_text(text: str) -> float | None:
    return None if text.strip().lower() == "none" else _number_text(text)


def _optional_toml(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _number_toml(value)


def _integer_text(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise _Bad
    return int(text)


def _integer_toml(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad
    return value


def _list_text(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _list_toml(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Bad
    return tuple(value)


_LISTED = "comma-separated in the environment, an array of strings in TOML"
TEXT = Kind("a non-empty string", _text, _text)
BOOL = Kind("true or false (in the environment also 1/0, yes/no, on/off)", _bool_text, _bool_toml)
SECONDS = Kind("a number of seconds, e.g. 1800 or 0.5", _number_text, _number_toml)
OPTIONAL_SECONDS = Kind('a number of seconds, or "none"', _optional_text, _optional_toml)
INTEGER = Kind("a whole number, e.g. 16384", _integer_text, _integer_toml)
LIST = Kind(f"a list of strings ({_LISTED})", _list_text, _list_toml)
KEY = Kind("at least 32 random bytes, as text", _key_text, _key_text)
KEYS = Kind(f"a list of keys of at least 32 random bytes each ({_LISTED})", _list_text, _list_toml)


@dataclass(frozen=True)
class Option:
    """One setting. ``name`` is the Python keyword and the TOML key; the variable is :attr:`env`."""

    name: str
    kind: Kind
    secret: bool = False  # its value never appears in a message
    store: bool = False  # configures the store rather than FixGuard itself

    @property
    def env(self) -> str:
        """``FIXGUARD_`` + the name in upper case."""
        return ENV_PREFIX + self.name.upper()


#: Every setting that has an environment and TOML form, in the README's order. A setting
#: FixGuard does not accept (an older version) is refused when given, never dropped.
OPTIONS: tuple[Option, ...] = (
    Option("secret_key", KEY, secret=True),
    Option("fallback_keys", KEYS, secret=True),
    Option("app_cookies", LIST),
    Option("login", LIST),
    Option("logout", LIST),
    Option("elevate", LIST),
    Option("cookie_name", TEXT),
    Option("secure", BOOL),
    Option("samesite", TEXT),
    Option("idle_timeout", SECONDS),
    Option("absolute_timeout", SECONDS),
    Option("on_fixation", TEXT),
    Option("settle_time", SECONDS),
    Option("harden_cookies", BOOL),
    Option("script_cookies", LIST),
    Option("max_cookie_header", INTEGER),
    Option("max_cookies", INTEGER),
    Option("renew_after", OPTIONAL_SECONDS),
    Option("renew_grace", SECONDS),
    Option("token_fields", LIST),
    Option("token_passthrough", LIST),
    Option("max_token_body", INTEGER),
    Option("detect_logins", BOOL),
    Option("credential_fields", LIST),
    Option("max_detect_body", INTEGER),
    Option("reject_redirect", TEXT),
    Option("cookie_max_age", OPTIONAL_SECONDS),
    Option("redis_url", TEXT, secret=True, store=True),  # may carry a password
    Option("redis_prefix", TEXT, store=True),
    Option("redis_cluster", BOOL, store=True),
    Option("redis_sentinels", LIST, store=True),
    Option("redis_sentinel_master", TEXT, store=True),
    Option("redis_min_replicas", INTEGER, store=True),
    Option("redis_wait_timeout", SECONDS, store=True),
)
_BY_NAME = {option.name: option for option in OPTIONS}
_RULE_OPTIONS = frozenset(("login", "logout", "elevate", "token_passthrough"))
_BY_ENV = {option.env: option for option in OPTIONS}

#: Keywords that only Python can give, and what to do instead.
PYTHON_ONLY = {
    "on_event": "on_event is a Python callable and has no environment or TOML form: pass it as a "
    "keyword, e.g. FixGuard.from_env(app, on_event=handler)",
    "on_reject": "on_reject is a Python callable and has no environment or TOML form: pass it as a "
    "keyword, or use reject_redirect (FIXGUARD_REJECT_REDIRECT) to send browsers to the login page",
    "store": "store has no environment or TOML form: set redis_url (FIXGUARD_REDIS_URL) for a "
    "RedisStore, leave it unset for a MemoryStore, or pass store= in Python",
}


def _read(option: Option, where: str, raw: Any, *, from_env: bool) -> Any:
    """One value, parsed and checked on its own; ConfigError names ``where`` and what is allowed."""
    try:
        value = option.kind.from_text(raw) if from_env else option.kind.from_toml(raw)
    except _Bad:
        if option.secret:
            got = "" if from_env else f", got a TOML {type(raw).__name__}"
        else:
            got = f", got {raw!r}"
        raise ConfigError(f"{where} must be {option.kind.allowed}{got}") from None
    if option.kind is KEY:
        check_key(where, value)
    elif option.kind is KEYS:
        for number, key in enumerate(value, 1):
            check_key(f"{where} (key {number})", key)
    elif option.name in _RULE_OPTIONS:
        for text in value:
            try:
                parse_rule(option.name, text)
            except RuleError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    return value


def _not_a_setting(given: str, where: str, *, as_env: bool) -> ConfigError:
    """The error for an unknown variable or key: a typo must not make a setting vanish."""
    guess = given.lower().removeprefix(ENV_PREFIX.lower()).replace("-", "_")
    if guess in PYTHON_ONLY:
        return ConfigError(f"{given} ({where}): {PYTHON_ONLY[guess]}")
    match = _closest(guess)
    spell: Callable[[Option], str] = (lambda o: o.env) if as_env else (lambda o: o.name)
    hint = f" Did you mean {spell(_BY_NAME[match])}?" if match else ""
    known = ", ".join(spell(option) for option in OPTIONS)
    if as_env:
        known += f" (and {CONFIG_ENV}, a TOML file)"
    return ConfigError(f"{given} ({where}) is not a fixguard setting.{hint} The settings are: {known}")


def _closest(guess: str) -> str | None:
    """The setting a misspelt name most likely meant: same name, a prefix of it, or a near spelling."""
    names = [option.name for option in OPTIONS]
    if guess in _BY_NAME:
        return guess
    if len(guess) >= 4:
        for name in names:
            if name.startswith(guess) or guess.startswith(name):
                return name
    return next(iter(difflib.get_close_matches(guess, names, 1, 0.7)), None)


def read_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from ``FIXGUARD_*`` variables (``os.environ`` by default), by setting name.

    Only the variables that are set appear. Every ``FIXGUARD_*`` variable must be
    a setting (or ``FIXGUARD_CONFIG``): a misspelt one is refused, since it would
    otherwise leave a security setting at its default without a word.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in sorted(env):
        if not var.upper().startswith(ENV_PREFIX) or var in RESERVED_ENV:
            continue
        option = _BY_ENV.get(var)
        if option is None:
            raise _not_a_setting(var, "environment variable", as_env=True)
        values[option.name] = _read(option, var, env[var], from_env=True)
    return values


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from the ``[fixguard]`` table of a TOML file, by setting name.

    Keys are the Python names (``secret_key``, ``login = ["POST /login"]``,
    ``secure = false``, ``redis_url``). The rest of the file is left alone, so
    the table can live in a larger configuration file; a setting outside the
    table, or an unknown key inside it, is refused.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {name} does not exist: check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {name}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name} is not valid TOML: {exc}") from None
    stray = sorted(key for key in data if key != TOML_TABLE and (key in _BY_NAME or key in PYTHON_ONLY))
    if stray:
        raise ConfigError(
            f"{name}: {', '.join(stray)} must be under the [{TOML_TABLE}] table, not at the top "
            f"of the file: add a line [{TOML_TABLE}] above the settings"
        )
    table = data.get(TOML_TABLE)
    if not isinstance(table, dict):
        raise ConfigError(
            f"{name} has no [{TOML_TABLE}] table: fixguard reads its settings from under a "
            f"[{TOML_TABLE}] line, e.g.\n[{TOML_TABLE}]\nsecure = true\nlogin = [\"POST /login\"]"
        )
    values: dict[str, Any] = {}
    for key, raw in table.items():
        option = _BY_NAME.get(key)
        if option is None:
            raise _not_a_setting(key, f"in the [{TOML_TABLE}] table of {name}", as_env=False)
        values[key] = _read(option, f"{key} in {name}", raw, from_env=False)
    return values


def read_deployment(
    environ: Mapping[str, str] | None = None, path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """A deployment's settings: a TOML file, then ``FIXGUARD_*`` variables on top of it.

    The file is ``path`` if given, else the one ``FIXGUARD_CONFIG`` names, else
    none. Variables win over the file, so a secret can stay out of the file
    (``FIXGUARD_SECRET_KEY``) while the rest lives in it. This is what
    :meth:`FixGuard.from_env`, the gunicorn hooks and ``fixguard sessions`` read.
    """
    env = os.environ if environ is None else environ
    if path is None and CONFIG_ENV in env:
        path = env[CONFIG_ENV]
        if not path.strip():
            raise ConfigError(f"{CONFIG_ENV} is empty: unset it, or set it to the path of a TOML file")
    values = read_file(path) if path is not None else {}
    values.update(read_env(env))
    return values


def make_store(values: Mapping[str, Any], asynchronous: bool = False) -> Any:
    """The Redis store the ``redis_*`` settings describe, or None: FixGuard's MemoryStore.

    ``asynchronous``: an :class:`~fixguard.stores.AsyncRedisStore` instead (the ASGI
    middleware's). See :mod:`fixguard.redis_settings` (one server, Cluster or Sentinel,
    and durability).
    """
    from .redis_settings import make_store as make_redis_store

    return make_redis_store(values, asynchronous)


def guard_options(
    values: Mapping[str, Any],
    accepts: Collection[str],
    overrides: Mapping[str, Any],
    asynchronous: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for FixGuard: ``values``, a store from ``redis_url``, ``overrides`` on top.

    ``accepts`` is the set of keywords the FixGuard at hand takes; a configured
    setting it does not know is refused rather than dropped.
    """
    unknown = [n for n in values if n not in accepts and not (n in _BY_NAME and _BY_NAME[n].store)]
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)}: this version of fixguard has no such setting: remove it, "
            "or upgrade fixguard"
        )
    if ("redis_url" in values or "redis_sentinels" in values) and "store" in overrides:
        raise ConfigError(
            "store= was passed and redis_url (FIXGUARD_REDIS_URL) or redis_sentinels is configured "
            "too: keep one"
        )
    kwargs = {n: v for n, v in values.items() if not (n in _BY_NAME and _BY_NAME[n].store)}
    kwargs.update(overrides)
    if "secret_key" in accepts and kwargs.get("secret_key") is None:
        raise ConfigError(
            "secret_key is required: set FIXGUARD_SECRET_KEY (or secret_key in the [fixguard] table of "
            "the TOML file) to at least 32 random bytes, e.g. "
            'python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    if "store" not in kwargs:
        store = make_store(values, asynchronous)
        if store is not None:
            kwargs["store"] = store
    return kwargs


_G = TypeVar("_G")


def build_guard(
    factory: Callable[..., _G], app: Any, values: Mapping[str, Any], overrides: Mapping[str, Any]
) -> _G:
    """``factory(app, **options)``: a FixGuard from parsed settings (see :func:`guard_options`).

    The keywords ``factory`` accepts are read from its signature, so a setting
    is passed through exactly when this version of FixGuard has it.
    """
    accepts = set(inspect.signature(factory).parameters) - {"app"}
    kwargs = guard_options(values, accepts, overrides, getattr(factory, "asynchronous", False))
    try:
        return factory(app, **kwargs)
    except BaseException:
        close = getattr(kwargs.get("store"), "close", None) if "store" not in overrides else None
        if close is not None and not inspect.iscoroutinefunction(close):
            close()  # a RedisStore made here must not leak its connection pool
        raise
