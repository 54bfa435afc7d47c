"""``fixguard demo``: a session fixation attack, played out in-process.

The demo drives the three vulnerable Flask apps of ``examples/``, one per
shape of the attack, with two :class:`werkzeug.test.Client` clients, an
attacker and a victim, first bare, then wrapped in :class:`~fixguard.FixGuard`:

1. the attacker gets an ID: the session cookie the app gives him, or, for
   the bearer-token API, a token he simply makes up;
2. he plants it in the victim's browser (or API client);
3. the victim logs in;
4. the attacker replays his cookie on ``/profile`` (his token on ``/me``).

Bare, each app hands the attacker the victim's account. Protected, the
planted ID dies at login and the replay is refused, while the victim carries
on. No socket is opened and nothing is written to disk.

The example apps live in the source tree, not in the installed package, and
need Flask (and PyJWT); the demo says so (exit status 2) when either is
missing. Session IDs and tokens are printed only as their first few
characters, and the keys are random for each run and never printed.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import logging
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from werkzeug.test import Client, TestResponse

import fixguard

#: How to get the example apps: they are not part of the installed package.
INSTALL_HINT = (
    "run it from a source checkout of fixguard, where the example apps live in examples/, "
    "after installing it with: pip install -e '.[examples]'"
)

_BASE_URL = "https://localhost/"
_VICTIM, _PASSWORD = "alice", "secret"  # a demo account of both example apps
_SHOWN = 8  # characters of a cookie value that may be printed


def _form_login(client: Client) -> TestResponse:
    data = {"username": _VICTIM, "password": _PASSWORD}
    return client.post("/login", data=data, base_url=_BASE_URL)


def _basic_login(client: Client) -> TestResponse:
    token = base64.b64encode(f"{_VICTIM}:{_PASSWORD}".encode()).decode("ascii")
    return client.post("/login", headers={"Authorization": f"Basic {token}"}, base_url=_BASE_URL)


def _json_login(client: Client, token: str) -> TestResponse:
    """An API client's login: JSON credentials, and the bearer token it already holds."""
    data = {"username": _VICTIM, "password": _PASSWORD}
    return client.post("/login", json=data, headers=_bearer(token), base_url=_BASE_URL)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class _Example:
    name: str
    cookie: str  # the app's own session cookie ("" for the token API: it is in a token)
    flaw: str
    how: str
    login: Callable[..., TestResponse]  # (client) for cookie apps, (client, token) for the API
    bearer: bool = False  # the attack rides on a bearer token, not on a cookie


_EXAMPLES = (
    _Example(
        "signed_cookie_app",
        "sid",
        "an HMAC-signed sid cookie that the login echoes back",
        "with a login form",
        _form_login,
    ),
    _Example(
        "basic_auth_app",
        "session",
        "HTTP Basic login on a server-side Flask session that keeps its ID",
        "with HTTP Basic Auth",
        _basic_login,
    ),
    _Example(
        "bearer_app",
        "",
        "a JSON API whose login keeps the bearer token the client already had",
        "with a JSON login",
        _json_login,
        bearer=True,
    ),
)


def _short(value: str) -> str:
    return value[:_SHOWN] + "…"


def _said(response: TestResponse) -> str:
    lines = response.get_data(as_text=True).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 60:
        text = text[:57] + "..."
    return f'{response.status_code} "{text}"'


def _cookie_names(response: TestResponse) -> list[str]:
    names = []
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return names


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out)

    return say


def _load_examples(out: TextIO) -> dict[str, ModuleType] | None:
    say = _printer(out)
    # A source checkout has examples/ next to the fixguard package directory.
    root = Path(fixguard.__file__).resolve().parent.parent
    folder = root / "examples"
    if not (folder / "__init__.py").is_file():
        say(f"fixguard demo: the example apps are not here ({folder} is missing).")
        say(f"To see the demo, {INSTALL_HINT}")
        return None
    if importlib.util.find_spec("flask") is None:
        say("fixguard demo: the example apps are Flask apps, and Flask is not installed.")
        say(f"To see the demo, {INSTALL_HINT}")
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    modules = {}
    for example in _EXAMPLES:
        try:
            module = importlib.import_module(f"examples.{example.name}")
        except ImportError as exc:
            say(f"fixguard demo: cannot import examples.{example.name}: {exc}")
            say(f"To see the demo, {INSTALL_HINT}")
            return None
        where = Path(module.__file__ or "").resolve().parent
        if where != folder:
            say(
                f"fixguard demo: examples.{example.name} was imported from {where}, "
                f"not from {folder}: another package named 'examples' is in the way."
            )
            return None
        modules[example.name] = module
    return modules


def _play(example: _Example, module: ModuleType, *, protected: bool, out: TextIO) -> str:
    """One attack; returns "exploited", "blocked" or "broken"."""
    say = _printer(out)
    module.reset()
    app: Any = module.create_app()
    events: list[Any] = []
    if protected:
        module.protect(app, secret_key=secrets.token_urlsafe(48), secure=True, on_event=events.append)
    attacker, victim = Client(app), Client(app)

    def report_events() -> None:
        for event in events:
            say(f"     fixguard: {getattr(event, 'kind', type(event).__name__)}")
        events.clear()

    if example.bearer:
        return _play_token(example, attacker, victim, say, report_events)

    def cookies(client: Client, names: list[str]) -> dict[str, str]:
        found = {}
        for name in names:
            cookie = client.get_cookie(name)
            if cookie is not None:
                found[name] = cookie.decoded_value
        return found

    first = attacker.get("/", base_url=_BASE_URL)
    held = cookies(attacker, _cookie_names(first))
    shown = ", ".join(f"{n}={_short(v)}" for n, v in held.items()) or "no cookie at all"
    say(f"  1. attacker GET /           -> {_said(first)}")
    say(f"     his browser now holds {shown}")
    if protected and example.cookie not in held:
        say(f"     (the app's own {example.cookie!r} cookie stayed on the server)")
    report_events()
    if not held:
        say("     nothing to plant: the attack cannot start")
        return "blocked" if protected else "broken"

    for name, value in held.items():
        victim.set_cookie(name, value)
    say(f"  2. attacker plants {shown} in the victim's browser")

    login = example.login(victim)
    say(f"  3. victim logs in as {_VICTIM} {example.how}: POST /login -> {_said(login)}")
    after = cookies(victim, [*held, *_cookie_names(login)])
    for name, value in after.items():
        same = "the very ID the attacker planted" if held.get(name) == value else "a fresh ID"
        say(f"     her browser now holds {name}={_short(value)}: {same}")
    report_events()
    own = victim.get("/profile", base_url=_BASE_URL)
    say(f"     victim GET /profile      -> {_said(own)}")
    victim_ok = login.status_code < 400 and own.status_code == 200
    victim_ok = victim_ok and _VICTIM in own.get_data(as_text=True)
    events.clear()

    replay = attacker.get("/profile", base_url=_BASE_URL)
    say(f"  4. attacker replays {shown}: GET /profile -> {_said(replay)}")
    report_events()
    return _verdict(say, replay, victim_ok, "ID")


def _play_token(
    example: _Example,
    attacker: Client,
    victim: Client,
    say: Callable[[str], None],
    report_events: Callable[[], None],
) -> str:
    """The bearer-token shape: the attacker makes a token up, the victim's login keeps it."""
    planted = secrets.token_urlsafe(24)
    shown = f"Bearer {_short(planted)}"
    say(f"  1. attacker makes up a token of his own: {shown}")
    say("  2. attacker plants it in the victim's API client, which sends it with every request")

    login = example.login(victim, planted)
    say(f"  3. victim logs in as {_VICTIM} {example.how}: POST /login -> {login.status_code}")
    document = login.get_json(silent=True)
    held = document.get("access_token") if isinstance(document, dict) else None
    if isinstance(held, str) and held:
        same = "the very token the attacker planted" if held == planted else "a fresh token"
        say(f"     her client now holds access_token={_short(held)}: {same}")
    else:
        say("     her client got no token back")
        held = ""
    report_events()
    own = victim.get("/me", headers=_bearer(held), base_url=_BASE_URL)
    say(f"     victim GET /me           -> {_said(own)}")
    victim_ok = bool(held) and login.status_code < 400 and own.status_code == 200
    victim_ok = victim_ok and _VICTIM in own.get_data(as_text=True)
    report_events()

    replay = attacker.get("/me", headers=_bearer(planted), base_url=_BASE_URL)
    say(f"  4. attacker replays {shown}: GET /me -> {_said(replay)}")
    report_events()
    return _verdict(say, replay, victim_ok, "token")


def _verdict(say: Callable[[str], None], replay: TestResponse, victim_ok: bool, what: str) -> str:
    """The same rule for every shape: the replay decides, the victim must still be served."""
    exploited = replay.status_code == 200 and _VICTIM in replay.get_data(as_text=True)
    if exploited:
        say(f"  => EXPLOITED: the attacker is logged in as {_VICTIM}")
        return "exploited"
    if not victim_ok:
        say(f"  => BROKEN: the attacker got nothing, but neither did {_VICTIM}")
        return "broken"
    say(f"  => BLOCKED: the planted {what} died at login; {_VICTIM} is still logged in")
    return "blocked"


def run_demo(out: TextIO = sys.stdout) -> int:
    """Play the attack against every example, bare then protected.

    Returns 0 when every bare app was exploited and every protected one
    blocked the attack, 1 when anything else happened, 2 when the example
    apps (or Flask) are not available.
    """
    say = _printer(out)
    modules = _load_examples(out)
    if modules is None:
        return 2
    say("fixguard demo: session fixation, played in-process against three example apps.")
    say("An attacker plants his session cookie (or bearer token) in a victim's browser")
    say("(or API client), the victim logs in, the attacker replays it.")
    say("Cookie and token values are cut short; keys are random.")
    expected = {False: "exploited", True: "blocked"}
    results: list[tuple[str, str, str]] = []
    # fixguard logs what it blocks; the demo shows those events itself, so keep
    # Python's last-resort handler from echoing them to stderr meanwhile.
    quiet = logging.NullHandler()
    logging.getLogger("fixguard").addHandler(quiet)
    try:
        for example in _EXAMPLES:
            say(f"\n== examples/{example.name}.py: {example.flaw}")
            for protected in (False, True):
                mode = "protected by FixGuard" if protected else "bare"
                say(f"-- {mode}")
                try:
                    outcome = _play(example, modules[example.name], protected=protected, out=out)
                except Exception as exc:
                    say(f"  => ERROR: {type(exc).__name__}: {exc}")
                    outcome = "error"
                results.append((example.name, mode, outcome))
        from .demo_asgi import play

        results.extend(play(say) or ())  # the same attack on a Starlette app, through FixGuardMiddleware
    finally:
        logging.getLogger("fixguard").removeHandler(quiet)
        for module in modules.values():
            module.reset()
    say("\nSummary:")
    failed = 0
    for name, mode, outcome in results:
        want = expected[mode != "bare"]
        mark = "as expected" if outcome == want else f"UNEXPECTED, wanted {want}"
        failed += outcome != want
        say(f"  {name:<18} {mode:<22} {outcome:<10} {mark}")
    if failed:
        say(f"\n{failed} run(s) did not go as expected.")
        return 1
    say("\nEvery bare app was exploited; FixGuard stopped the attack on every one.")
    return 0
