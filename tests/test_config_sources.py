"""Configuration without code: ``FIXGUARD_*`` variables, TOML files, and their one table of names.

Every setting has one name: the Python keyword, the TOML key in the
``[fixguard]`` table, and ``FIXGUARD_`` + the name in upper case. These tests
configure the same guard three ways and compare the validated settings, and
check that what would silently lose a setting — a typo, a wrong type, a key
outside the table — is refused with a message naming it and what is allowed.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from fixguard import ConfigError, FixGuard, MemoryStore
from fixguard.config import (
    OPTIONS,
    PYTHON_ONLY,
    build_guard,
    read_deployment,
    read_env,
    read_file,
)

from .apps import OTHER_SECRET, SECRET, echo_app

REPO = Path(__file__).resolve().parents[1]

#: One configuration that sets every setting away from its default, in each of the three forms.
PYTHON: dict[str, Any] = {
    "secret_key": SECRET,
    "fallback_keys": (OTHER_SECRET,),
    "app_cookies": ("session", "remember"),
    "login": ("POST /login 302", "POST /auth/*/callback"),
    "logout": ("POST /logout", "GET /signout"),
    "elevate": ("POST /mfa",),
    "cookie_name": "fg",
    "secure": False,
    "samesite": "Strict",
    "idle_timeout": 600,
    "absolute_timeout": 7200.5,
    "on_fixation": "strip",
    "settle_time": 0.05,
    "harden_cookies": True,
    "script_cookies": ("csrftoken",),
    "max_cookie_header": 8192,
    "max_cookies": 64,
    "renew_after": 300,
    "renew_grace": 20,
    "reject_redirect": "/login?again=1",
    "cookie_max_age": 3600,
}
ENV = {
    "FIXGUARD_SECRET_KEY": SECRET,
    "FIXGUARD_FALLBACK_KEYS": OTHER_SECRET,
    "FIXGUARD_APP_COOKIES": "session, remember",
    "FIXGUARD_LOGIN": "POST /login 302,POST /auth/*/callback",
    "FIXGUARD_LOGOUT": "POST /logout, GET /signout",
    "FIXGUARD_ELEVATE": "POST /mfa",
    "FIXGUARD_COOKIE_NAME": "fg",
    "FIXGUARD_SECURE": "false",
    "FIXGUARD_SAMESITE": "Strict",
    "FIXGUARD_IDLE_TIMEOUT": "600",
    "FIXGUARD_ABSOLUTE_TIMEOUT": "7200.5",
    "FIXGUARD_ON_FIXATION": "strip",
    "FIXGUARD_SETTLE_TIME": "0.05",
    "FIXGUARD_HARDEN_COOKIES": "yes",
    "FIXGUARD_SCRIPT_COOKIES": "csrftoken",
    "FIXGUARD_MAX_COOKIE_HEADER": "8192",
    "FIXGUARD_MAX_COOKIES": "64",
    "FIXGUARD_RENEW_AFTER": "300",
    "FIXGUARD_RENEW_GRACE": "20",
    "FIXGUARD_REJECT_REDIRECT": "/login?again=1",
    "FIXGUARD_COOKIE_MAX_AGE": "3600",
}
TOML = f"""
title = "an application's own configuration: not fixguard's business"

[fixguard]
secret_key = "{SECRET}"
fallback_keys = ["{OTHER_SECRET}"]
app_cookies = ["session", "remember"]
login = ["POST /login 302", "POST /auth/*/callback"]
logout = ["POST /logout", "GET /signout"]
elevate = ["POST /mfa"]
cookie_name = "fg"
secure = false
samesite = "Strict"
idle_timeout = 600
absolute_timeout = 7200.5
on_fixation = "strip"
settle_time = 0.05
harden_cookies = true
script_cookies = ["csrftoken"]
max_cookie_header = 8192
max_cookies = 64
renew_after = 300
renew_grace = 20
reject_redirect = "/login?again=1"
cookie_max_age = 3600

[database]
url = "postgres://elsewhere"
"""

#: Settings that exist only when FixGuard's signature has them (bearer tokens landed separately).
TOKEN_SETTINGS = {
    "token_fields": (
        ("access_token", "data.refresh"),
        "access_token, data.refresh",
        '["access_token", "data.refresh"]',
    ),
    "token_passthrough": (("GET /public/*",), "GET /public/*", '["GET /public/*"]'),
    "max_token_body": (4096, "4096", "4096"),
}
GUARD_KEYWORDS = set(inspect.signature(FixGuard).parameters) - {"app"}
for _name, (_python, _env, _toml) in TOKEN_SETTINGS.items():
    if _name in GUARD_KEYWORDS:
        PYTHON[_name] = _python
        ENV["FIXGUARD_" + _name.upper()] = _env
        TOML = TOML.replace("\n[database]", f"{_name} = {_toml}\n\n[database]")


def write(tmp_path: Path, text: str, name: str = "fixguard.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def env(**changes: str | None) -> dict[str, str]:
    """A minimal valid environment, with ``changes`` (None removes a variable)."""
    out = {"FIXGUARD_SECRET_KEY": SECRET, "FIXGUARD_SECURE": "false", "PATH": "/usr/bin", "HOME": "/root"}
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def refused(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        FixGuard.from_env(echo_app, environ)
    return str(caught.value)


# -- one name, three forms ---------------------------------------------------------------


def test_every_setting_is_the_same_in_python_env_and_toml(tmp_path: Path) -> None:
    in_python = FixGuard(echo_app, **PYTHON).settings
    from_env = FixGuard.from_env(echo_app, {**ENV, "PATH": "/usr/bin", "LANG": "C"}).settings
    from_file = FixGuard.from_file(echo_app, write(tmp_path, TOML)).settings
    assert from_env == in_python
    assert from_file == in_python
    # and every setting really is away from its default, so the comparison means something
    defaults = FixGuard(echo_app, secret_key=SECRET).settings
    for name in PYTHON:
        if name != "secret_key":
            assert getattr(in_python, name) != getattr(defaults, name), name


def test_the_table_covers_every_keyword_of_fixguard() -> None:
    """A new FixGuard keyword needs a row in OPTIONS (or a reason to be Python-only)."""
    table = {option.name for option in OPTIONS}
    assert GUARD_KEYWORDS - set(PYTHON_ONLY) <= table, GUARD_KEYWORDS - set(PYTHON_ONLY) - table
    assert set(PYTHON_ONLY) <= GUARD_KEYWORDS
    for option in OPTIONS:
        assert option.env == "FIXGUARD_" + option.name.upper()


def test_the_readme_has_one_row_per_setting_with_its_three_names() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Configuration\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = {line for line in section.splitlines() if line.startswith("| `")}
    for option in OPTIONS:
        row = [line for line in rows if line.startswith(f"| `{option.name}` |")]
        assert len(row) == 1, f"README: no single configuration row for {option.name}"
        assert f"`{option.env}`" in row[0], row[0]
    for name in PYTHON_ONLY:
        assert any(line.startswith(f"| `{name}` |") for line in rows), name


def test_every_setting_of_the_readme_table_is_a_python_keyword() -> None:
    """The table says "setting (Python, TOML)": each of its names is a keyword FixGuard takes."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Configuration\n") :]
    section = section[: section.index("\n## ", 1)]
    names = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)
    assert "redis_url" in names and "reject_redirect" in names and "cookie_max_age" in names
    assert set(names) <= GUARD_KEYWORDS, set(names) - GUARD_KEYWORDS


def test_env_lists_are_comma_separated_and_blank_items_dropped() -> None:
    values = read_env({"FIXGUARD_APP_COOKIES": " session ,, csrftoken, ", "FIXGUARD_ELEVATE": ""})
    assert values == {"app_cookies": ("session", "csrftoken"), "elevate": ()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True),
     ("false", False), ("False", False), ("0", False), ("no", False), ("off", False)],
)  # fmt: skip
def test_env_booleans(text: str, expected: bool) -> None:
    assert read_env({"FIXGUARD_HARDEN_COOKIES": text}) == {"harden_cookies": expected}


def test_env_numbers_and_none() -> None:
    values = read_env(
        {"FIXGUARD_IDLE_TIMEOUT": "90", "FIXGUARD_SETTLE_TIME": " 0.5 ", "FIXGUARD_MAX_COOKIES": "12",
         "FIXGUARD_RENEW_AFTER": "None"}
    )  # fmt: skip
    assert values == {"idle_timeout": 90.0, "settle_time": 0.5, "max_cookies": 12, "renew_after": None}
    assert FixGuard.from_env(echo_app, env(FIXGUARD_RENEW_AFTER="none")).settings.renew_after is None


def test_only_fixguard_variables_are_read() -> None:
    guard = FixGuard.from_env(echo_app, env(SECURE="true", LOGIN="GET /x", DJANGO_SECRET_KEY="x"))
    assert guard.settings.secure is False
    assert [rule.text for rule in guard.settings.login] == ["POST /login"]


def test_defaults_apply_to_what_is_not_set() -> None:
    assert FixGuard.from_env(echo_app, env()).settings == FixGuard(echo_app, SECRET, secure=False).settings


# -- refusals: a message naming the setting and what is allowed -----------------------------


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("FIXGUARD_SECURE", "maybe", "true or false"),
        ("FIXGUARD_HARDEN_COOKIES", "", "true or false"),
        ("FIXGUARD_IDLE_TIMEOUT", "30min", "a number of seconds"),
        ("FIXGUARD_ABSOLUTE_TIMEOUT", "nan", "a number of seconds"),
        ("FIXGUARD_SETTLE_TIME", "inf", "a number of seconds"),
        ("FIXGUARD_RENEW_AFTER", "never", 'a number of seconds, or "none"'),
        ("FIXGUARD_MAX_COOKIES", "12.5", "a whole number"),
        ("FIXGUARD_MAX_COOKIE_HEADER", "16k", "a whole number"),
        ("FIXGUARD_COOKIE_NAME", "", "a non-empty string"),
    ],
)
def test_bad_values_are_refused_naming_the_variable_and_what_is_allowed(
    variable: str, value: str, allowed: str
) -> None:
    message = refused(env(**{variable: value}))
    assert message.startswith(variable + " must be " + allowed), message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("variable", "value", "expect"),
    [
        ("FIXGUARD_SAMESITE", "sometimes", "samesite must be 'Strict', 'Lax' or 'None'"),
        ("FIXGUARD_ON_FIXATION", "ignore", "on_fixation must be 'reject' or 'strip'"),
        ("FIXGUARD_LOGIN", "login", "login"),
        ("FIXGUARD_IDLE_TIMEOUT", "-5", "idle_timeout must be a positive number of seconds"),
        ("FIXGUARD_MAX_COOKIES", "0", "max_cookies must be a positive integer"),
        ("FIXGUARD_ABSOLUTE_TIMEOUT", "60", "absolute_timeout (60s) is shorter than idle_timeout"),
        ("FIXGUARD_APP_COOKIES", "a b", "app_cookies: 'a b' is not a valid cookie name"),
    ],
)
def test_values_fixguard_itself_refuses_keep_their_message(variable: str, value: str, expect: str) -> None:
    assert expect in refused(env(**{variable: value}))


def test_secure_cookie_name_needs_secure_from_env_too() -> None:
    assert "needs Secure" in refused(env(FIXGUARD_COOKIE_NAME="__Host-fg"))


@pytest.mark.parametrize(
    ("key", "expect"),
    [
        ("short", "FIXGUARD_SECRET_KEY is 5 bytes; it must be at least 32 random bytes"),
        ("", "FIXGUARD_SECRET_KEY is 0 bytes"),
        ("changeme-changeme-changeme-changeme-changeme", "well-known placeholder 'changeme'"),
        ("django-insecure-0123456789abcdefghijklmnopqrstuvwxyz", "placeholder 'django-insecure'"),
    ],
)
def test_weak_keys_are_refused_without_echoing_them(key: str, expect: str) -> None:
    message = refused(env(FIXGUARD_SECRET_KEY=key))
    assert expect in message
    assert "secrets.token_urlsafe" in message  # how to make a good one
    if key:
        assert key not in message


def test_weak_fallback_key_is_named_by_position() -> None:
    message = refused(env(FIXGUARD_FALLBACK_KEYS=f"{OTHER_SECRET},tooshort"))
    assert "FIXGUARD_FALLBACK_KEYS (key 2) is 8 bytes" in message
    assert "tooshort" not in message and OTHER_SECRET not in message


def test_missing_secret_key_says_which_variable_to_set() -> None:
    message = refused(env(FIXGUARD_SECRET_KEY=None))
    assert "secret_key is required: set FIXGUARD_SECRET_KEY" in message


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("FIXGUARD_SECUR", "Did you mean FIXGUARD_SECURE?"),
        ("FIXGUARD_SECRETKEY", "Did you mean FIXGUARD_SECRET_KEY?"),
        ("FIXGUARD_IDLE_TIMEOUTS", "Did you mean FIXGUARD_IDLE_TIMEOUT?"),
        ("fixguard_secure", "Did you mean FIXGUARD_SECURE?"),  # names are case-sensitive
        ("FIXGUARD_REDIS", "Did you mean FIXGUARD_REDIS_URL?"),
        ("FIXGUARD_WHATEVER", ""),
    ],
)
def test_unknown_fixguard_variables_are_refused(variable: str, suggestion: str) -> None:
    message = refused(env(**{variable: "false"}))
    assert message.startswith(f"{variable} (environment variable) is not a fixguard setting."), message
    assert suggestion in message
    assert "FIXGUARD_SECRET_KEY, FIXGUARD_FALLBACK_KEYS" in message  # what is allowed
    assert "FIXGUARD_CONFIG" in message


@pytest.mark.parametrize("variable", ["FIXGUARD_ON_EVENT", "FIXGUARD_STORE"])
def test_python_only_settings_say_what_to_do_instead(variable: str) -> None:
    message = refused(env(**{variable: "x"}))
    assert "has no environment or TOML form" in message
    assert ("on_event=" in message) if variable.endswith("EVENT") else ("FIXGUARD_REDIS_URL" in message)


def test_overrides_win_and_python_only_settings_come_through_them() -> None:
    seen: list[Any] = []
    store = MemoryStore()
    environ = env(FIXGUARD_IDLE_TIMEOUT="100")
    guard = FixGuard.from_env(echo_app, environ, idle_timeout=200, on_event=seen.append, store=store)
    assert guard.settings.idle_timeout == 200 and guard.store is store
    assert guard.settings.on_event == seen.append


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.upper().startswith("FIXGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FIXGUARD_SECRET_KEY", SECRET)
    monkeypatch.setenv("FIXGUARD_SAMESITE", "strict")
    assert FixGuard.from_env(echo_app).settings.samesite == "Strict"


# -- TOML -----------------------------------------------------------------------------------


def test_toml_settings_live_under_the_fixguard_table(tmp_path: Path) -> None:
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\nsecure = false\n\n[other]\nsecure = true\n')
    assert read_file(path) == {"secret_key": SECRET, "secure": False}
    assert read_file(str(path)) == read_file(path)


def test_toml_settings_at_the_top_level_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f'secret_key = "{SECRET}"\nsecure = false\n')
    with pytest.raises(ConfigError, match=r"secret_key, secure must be under the \[fixguard\] table"):
        read_file(path)


def test_toml_without_the_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no \[fixguard\] table"):
        read_file(write(tmp_path, 'title = "x"\n'))
    with pytest.raises(ConfigError, match=r"has no \[fixguard\] table"):
        read_file(write(tmp_path, 'fixguard = "x"\n'))


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('secure = "false"', "secure in {path} must be true or false"),
        ("secure = 0", "secure in {path} must be true or false"),
        ('login = "POST /login"', "login in {path} must be a list of strings"),
        ("app_cookies = [1, 2]", "app_cookies in {path} must be a list of strings"),
        ('idle_timeout = "600"', "idle_timeout in {path} must be a number of seconds"),
        ("idle_timeout = true", "idle_timeout in {path} must be a number of seconds"),
        ("idle_timeout = inf", "idle_timeout in {path} must be a number of seconds"),
        ("max_cookies = 12.0", "max_cookies in {path} must be a whole number"),
        ('renew_after = "later"', 'renew_after in {path} must be a number of seconds, or "none"'),
        (
            "secret_key = 12345",
            "secret_key in {path} must be at least 32 random bytes, as text, got a TOML int",
        ),
        ('secret_key = "short"', "secret_key in {path} is 5 bytes"),
        ('samesite = ""', "samesite in {path} must be a non-empty string"),
    ],
)
def test_toml_values_of_the_wrong_type_are_refused(tmp_path: Path, line: str, expect: str) -> None:
    text = f'[fixguard]\nsecret_key = "{SECRET}"\n' if not line.startswith("secret_key") else "[fixguard]\n"
    path = write(tmp_path, text + line + "\n")
    with pytest.raises(ConfigError) as caught:
        FixGuard.from_file(echo_app, path)
    assert expect.format(path=path) in str(caught.value)


def test_toml_renew_after_none(tmp_path: Path) -> None:
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\nrenew_after = "none"\n')
    assert FixGuard.from_file(echo_app, path).settings.renew_after is None


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("secure_cookie", "Did you mean secure?"), ("FIXGUARD_SECURE", "Did you mean secure?"),
     ("idle-timeout", "Did you mean idle_timeout?"), ("redis", "Did you mean redis_url?"), ("zzz", "")],
)  # fmt: skip
def test_unknown_toml_keys_are_refused(tmp_path: Path, key: str, suggestion: str) -> None:
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\n"{key}" = true\n')
    with pytest.raises(ConfigError) as caught:
        read_file(path)
    message = str(caught.value)
    assert message.startswith(f"{key} (in the [fixguard] table of {path}) is not a fixguard setting."), (
        message
    )
    assert suggestion in message and "secret_key, fallback_keys" in message


def test_a_nested_table_is_an_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\n[fixguard.redis]\nurl = "redis://x"\n')
    with pytest.raises(ConfigError, match=r"redis .* is not a fixguard setting"):
        read_file(path)


def test_on_event_in_toml_says_to_pass_it_in_python(tmp_path: Path) -> None:
    path = write(tmp_path, '[fixguard]\non_event = "mymodule.handler"\n')
    with pytest.raises(ConfigError, match="on_event is a Python callable"):
        read_file(path)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        read_file(tmp_path)
    with pytest.raises(ConfigError, match=r"is not valid TOML: .*line 2"):
        read_file(write(tmp_path, "[fixguard]\nsecure = \n"))


def test_from_file_does_not_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXGUARD_IDLE_TIMEOUT", "60")
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\n')
    assert FixGuard.from_file(echo_app, path).settings.idle_timeout == 1800
    assert FixGuard.from_file(echo_app, path, idle_timeout=90).settings.idle_timeout == 90


# -- deployment: FIXGUARD_CONFIG, then variables on top ----------------------------------------


def test_deployment_reads_the_file_then_variables_on_top(tmp_path: Path) -> None:
    path = write(tmp_path, '[fixguard]\nidle_timeout = 600\nlogin = ["POST /signin"]\nsecure = true\n')
    environ = {"FIXGUARD_CONFIG": str(path), "FIXGUARD_SECRET_KEY": SECRET, "FIXGUARD_SECURE": "false"}
    assert read_deployment(environ) == {
        "idle_timeout": 600, "login": ("POST /signin",), "secure": False, "secret_key": SECRET,
    }  # fmt: skip
    guard = FixGuard.from_env(echo_app, environ)  # the secret stays out of the file
    assert guard.settings.secure is False and guard.settings.idle_timeout == 600
    # an explicit path wins over FIXGUARD_CONFIG
    other = write(tmp_path, "[fixguard]\nidle_timeout = 60\n", "other.toml")
    assert read_deployment(environ, other)["idle_timeout"] == 60


def test_deployment_errors_in_the_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[fixguard]\nsecure = 1\n")
    with pytest.raises(ConfigError, match=f"secure in {re.escape(str(path))} must be true or false"):
        FixGuard.from_env(echo_app, env(FIXGUARD_CONFIG=str(path)))
    with pytest.raises(ConfigError, match="FIXGUARD_CONFIG is empty"):
        FixGuard.from_env(echo_app, env(FIXGUARD_CONFIG=" "))
    with pytest.raises(ConfigError, match="does not exist"):
        FixGuard.from_env(echo_app, env(FIXGUARD_CONFIG=str(tmp_path / "nope.toml")))


# -- the store ----------------------------------------------------------------------------------


def test_no_redis_url_means_memory_store() -> None:
    assert isinstance(FixGuard.from_env(echo_app, env()).store, MemoryStore)


def test_redis_url_and_prefix_make_a_redis_store(redis_server: Any, tmp_path: Path) -> None:
    from fixguard import RedisStore

    guard = FixGuard.from_env(
        echo_app, env(FIXGUARD_REDIS_URL=redis_server.url, FIXGUARD_REDIS_PREFIX="app1:")
    )
    store = guard.store
    assert isinstance(store, RedisStore) and store.prefix == "app1:"
    assert store.ping()
    store.close()
    path = write(tmp_path, f'[fixguard]\nsecret_key = "{SECRET}"\nredis_url = "{redis_server.url}"\n')
    from_file = FixGuard.from_file(echo_app, path).store
    assert isinstance(from_file, RedisStore) and from_file.prefix == "fixguard:"
    from_file.close()


def test_bad_redis_settings_are_refused_without_echoing_the_url() -> None:
    message = refused(env(FIXGUARD_REDIS_URL="http://:hunter2-password@cache:6379/0"))
    assert "redis_url (FIXGUARD_REDIS_URL) is not a URL redis-py accepts" in message
    assert "redis://" in message and "hunter2" not in message
    message = refused(env(FIXGUARD_REDIS_URL="redis://:hunter2-password@cache:port/0"))
    assert "hunter2" not in message
    assert "FIXGUARD_REDIS_URL must be a non-empty string" in refused(env(FIXGUARD_REDIS_URL=""))
    assert "redis_prefix (FIXGUARD_REDIS_PREFIX) is set but redis_url" in refused(
        env(FIXGUARD_REDIS_PREFIX="app:")
    )


def test_redis_url_and_prefix_are_python_keywords_too(redis_server: Any) -> None:
    from fixguard import RedisStore

    guard = FixGuard(echo_app, SECRET, secure=False, redis_url=redis_server.url, redis_prefix="py1:")
    store = guard.store
    assert isinstance(store, RedisStore) and store.prefix == "py1:" and store.ping()
    store.close()
    default_prefix = FixGuard(echo_app, SECRET, redis_url=redis_server.url).store
    assert isinstance(default_prefix, RedisStore) and default_prefix.prefix == "fixguard:"
    default_prefix.close()
    with pytest.raises(ConfigError, match="store= and redis_url= were both given"):
        FixGuard(echo_app, SECRET, redis_url=redis_server.url, store=MemoryStore())
    with pytest.raises(ConfigError, match=r"redis_prefix \(FIXGUARD_REDIS_PREFIX\) is set but redis_url"):
        FixGuard(echo_app, SECRET, redis_prefix="app:")
    with pytest.raises(ConfigError, match="redis_url must be a non-empty string"):
        FixGuard(echo_app, SECRET, redis_url="")
    with pytest.raises(ConfigError) as caught:
        FixGuard(echo_app, SECRET, redis_url="http://:hunter2@x/0")
    assert "hunter2" not in str(caught.value) and "redis_url" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("/login", True), ("/accounts/login/?next=/", True), ("https://sso.example.com/login", True),
     ("//evil.example", False), ("/\\evil.example", False), ("login", False), ("javascript:alert(1)", False),
     ("/login\r\nSet-Cookie: x=1", False), ("/a b", False), ("", False)],
)  # fmt: skip
def test_reject_redirect_is_a_local_path_or_an_http_url(value: str, accepted: bool) -> None:
    if accepted:
        assert FixGuard(echo_app, SECRET, reject_redirect=value).settings.reject_redirect == value
    else:
        with pytest.raises(ConfigError, match="reject_redirect must be a path on this site"):
            FixGuard(echo_app, SECRET, reject_redirect=value)


def test_cookie_max_age_never_beyond_absolute_timeout() -> None:
    assert FixGuard(echo_app, SECRET).settings.cookie_max_age is None
    assert FixGuard(echo_app, SECRET, cookie_max_age=43200).settings.cookie_max_age == 43200
    with pytest.raises(ConfigError, match=r"cookie_max_age \(1209600s\) is longer than absolute_timeout"):
        FixGuard(echo_app, SECRET, cookie_max_age=1209600)
    with pytest.raises(ConfigError, match="cookie_max_age must be a positive number of seconds"):
        FixGuard(echo_app, SECRET, cookie_max_age=0)
    assert FixGuard.from_env(echo_app, env(FIXGUARD_COOKIE_MAX_AGE="none")).settings.cookie_max_age is None


def test_store_override_and_redis_url_cannot_both_be_given() -> None:
    with pytest.raises(ConfigError, match="store= was passed and redis_url"):
        FixGuard.from_env(echo_app, env(FIXGUARD_REDIS_URL="redis://127.0.0.1:1/0"), store=MemoryStore())


# -- settings this FixGuard may not have yet ---------------------------------------------------


def test_a_setting_the_guard_does_not_take_is_refused_not_dropped() -> None:
    def older_guard(app: Any, secret_key: str, *, secure: bool = True) -> dict[str, Any]:
        return {"secret_key": secret_key, "secure": secure}

    assert build_guard(older_guard, echo_app, read_env(env()), {}) == {"secret_key": SECRET, "secure": False}
    with pytest.raises(ConfigError, match="token_fields: this version of fixguard has no such setting"):
        build_guard(older_guard, echo_app, read_env(env(FIXGUARD_TOKEN_FIELDS="access_token")), {})


@pytest.mark.skipif("token_fields" not in GUARD_KEYWORDS, reason="FixGuard has no token_fields yet")
def test_token_fields_pass_through_when_fixguard_has_them() -> None:
    guard = FixGuard.from_env(echo_app, env(FIXGUARD_TOKEN_FIELDS="access_token, data.refresh_token"))
    assert guard.settings.token_fields == ("access_token", "data.refresh_token")  # type: ignore[attr-defined]
