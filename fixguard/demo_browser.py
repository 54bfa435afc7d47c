"""``fixguard demo --browser``: the attack of ``fixguard demo``, played in headless Chromium.

The example apps are served by real gunicorn over https on loopback — bare
(``examples.<name>:app``) and behind fixguard with its defaults
(``create_protected_app()``: ``secure=True``, cookie ``__Host-fixguard``) —
with a certificate made for the run, which the browsers trust by its key's
pin only. Two Chromium processes play the two people:

1. the attacker opens the app; his session cookie is read through DevTools;
2. it is stored in the victim's browser, and she opens the sign-in page;
3. she signs in as a person would: types into the form and clicks, or lets
   her browser answer the Basic Auth challenge;
4. the attacker reloads the profile page.

Each step is printed and saved as a screenshot of the page it leaves on
screen, in a folder the demo names (``--out DIR``, or a new temporary one).
Bare, step 4 shows the victim's profile; protected, "This session has ended".
Exit status as ``fixguard demo``: 0 when every bare app fell and every
protected one held, 1 otherwise, 2 when something it needs is missing (it says
what to install). Cookie values are printed cut short; keys are random.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import fixguard

if TYPE_CHECKING:
    from .browser import Chromium, Tab

INSTALL_HINT = "pip install -e '.[examples,browser]' (from a source checkout of fixguard)"
CHROMIUM_HINT = "apt-get install chromium (Debian and Ubuntu), or your system's Chromium package"
START_TIMEOUT = 30.0  # seconds for the four servers to answer

#: gunicorn configuration: fixguard's events into gunicorn's error log (the README's recipe, without
#: the protecting hook: the protected example wraps itself).
_GUNICORN_CONF = """\
import logging


def post_worker_init(worker):
    events = logging.getLogger("fixguard")
    events.handlers = logging.getLogger("gunicorn.error").handlers
    events.setLevel(logging.WARNING)
    events.propagate = False
"""
_VICTIM, _PASSWORD = "alice", "secret"
_SHOWN = 8  # characters of a cookie value that may be printed
_SHOT = (440, 200)  # screenshot size, CSS pixels (saved at twice that): the sign-in form fits

#: The examples a browser can sign in to, what is wrong with each, how the victim signs in.
_EXAMPLES = {
    "signed_cookie_app": (
        "an HMAC-signed sid cookie that the login echoes back",
        "types into the login form",
    ),
    "basic_auth_app": ("HTTP Basic login on a server-side session that keeps its ID", "answers Basic Auth"),
}


def _missing(out: TextIO) -> bool:
    """Say what to install when the browser, gunicorn or cryptography is missing; True if so."""
    from .browser import CANDIDATES, find_chromium

    if find_chromium() is None:
        print(
            f"fixguard demo --browser: Chromium is not installed (looked for {', '.join(CANDIDATES)}).",
            file=out,
        )
        print(f"Install it: {CHROMIUM_HINT}", file=out)
        return True
    absent = [name for name in ("gunicorn", "cryptography") if importlib.util.find_spec(name) is None]
    if absent:
        print(f"fixguard demo --browser needs {' and '.join(absent)}, which is not installed.", file=out)
        print(f"Install it: {INSTALL_HINT}", file=out)
        return True
    return False


class _Server:
    """One gunicorn master serving an example over https on a free loopback port."""

    def __init__(self, app: str, protected: bool, cert: tuple[Path, Path], workdir: Path) -> None:
        root = Path(fixguard.__file__).resolve().parent.parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIXGUARD_")}  # fixguard's defaults
        if protected:
            env["FIXGUARD_SECRET_KEY"] = secrets.token_urlsafe(48)
        self.name = app
        self.log = workdir / f"gunicorn-{len(list(workdir.glob('gunicorn-*.log')))}.log"
        conf = workdir / "gunicorn.conf.py"
        if not conf.exists():
            conf.write_text(_GUNICORN_CONF)
        command = [
            sys.executable, "-m", "gunicorn", "-c", str(conf), "--chdir", str(root),
            "-w", "1", "-k", "gthread", "--threads", "8",
            "--certfile", str(cert[0]), "--keyfile", str(cert[1]), "-b", "127.0.0.1:0",
            "--error-logfile", "-", *_no_control_socket(), app,
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 -- this interpreter, fixed arguments, no shell
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.base = ""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self, deadline: float) -> str | None:
        """Until it listens with its worker booted: None, or what went wrong."""
        listening = re.compile(r"Listening at: (https://127\.0\.0\.1:\d+)")
        while time.monotonic() < deadline:
            text = self.log_text()
            if self.proc.poll() is not None or "Traceback" in text:
                return f"gunicorn could not serve {self.name}:\n{text[-2000:]}"
            found = listening.search(text)
            if found and "Booting worker" in text:
                self.base = found.group(1)
                return None
            time.sleep(0.05)
        return f"gunicorn did not start {self.name} within {START_TIMEOUT:.0f} s:\n{self.log_text()[-2000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def warnings(self) -> list[str]:
        """The kinds of the fixguard events this server logged (WARNING and above)."""
        return re.findall(r"\[(?:WARNING|ERROR)\] (\w+) id=", self.log_text())


def _no_control_socket() -> list[str]:
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def _short(value: str) -> str:
    return value[:_SHOWN] + "…"


def _said(status: int, text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f'{status} "{first[:57] + "..." if len(first) > 60 else first}"'


class _Shots:
    """Saves one screenshot per step into the demo's folder, and says where."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def take(self, tab: Tab, name: str) -> str:
        """Save what ``tab`` shows as ``name``; the line that says so."""
        tab.screenshot(self.folder / name, *_SHOT, scale=2)
        return f"     screenshot: {name}"


def _play(
    name: str,
    server: _Server,
    protected: bool,
    browsers: tuple[Chromium, Chromium],
    shots: _Shots,
    out: TextIO,
) -> str:
    """One attack in the two browsers; "exploited", "blocked" or "broken"."""
    mode = "protected" if protected else "bare"
    attacker, victim = browsers[0].profile(), browsers[1].profile()
    try:
        theirs, hers = attacker.tab(), victim.tab()

        def step(text: str, tab: Tab, shot: str) -> None:
            print(text, file=out)
            print(shots.take(tab, f"{name}-{mode}-{shot}.png"), file=out)

        status = theirs.navigate(server.base + "/")
        step(
            f"  1. attacker opens {server.base}/ -> {_said(status, theirs.text())}",
            theirs,
            "1-attacker-visits",
        )
        held = {c["name"]: c["value"] for c in attacker.cookies()}
        shown = ", ".join(f"{n}={_short(v)}" for n, v in held.items()) or "no cookie at all"
        print(f"     his browser holds {shown} (read through DevTools)", file=out)
        status = theirs.navigate(server.base + "/profile")
        print(f"     he opens /profile -> {_said(status, theirs.text())}", file=out)
        if not held:
            return "blocked" if protected else "broken"
        for cookie in attacker.cookies():
            victim.set_cookie(cookie, server.base + "/")
        status = hers.navigate(server.base + "/login")
        step(
            f"  2. planted in the victim's browser; she opens /login -> {_said(status, hers.text())}",
            hers,
            "2-planted",
        )
        if name == "signed_cookie_app":
            hers.type("input[name=username]", _VICTIM)
            hers.type("input[name=password]", _PASSWORD)
        else:
            hers.use_credentials(_VICTIM, _PASSWORD, url_pattern="*/login")
        status = hers.click("button")
        step(
            f"  3. victim {_EXAMPLES[name][1]}, clicks Sign in -> {_said(status, hers.text())}",
            hers,
            "3-signed-in",
        )
        for cookie in victim.cookies():
            same = (
                "the very ID the attacker planted"
                if held.get(cookie["name"]) == cookie["value"]
                else "a fresh ID"
            )
            print(f"     her browser now holds {cookie['name']}={_short(cookie['value'])}: {same}", file=out)
        status = theirs.reload()
        replay = theirs.text()
        step(f"  4. attacker reloads /profile -> {_said(status, replay)}", theirs, "4-attacker-replays")
        for kind in server.warnings():
            print(f"     fixguard: {kind}", file=out)
        own_status = hers.navigate(server.base + "/profile")
        print(f"     victim opens /profile -> {_said(own_status, hers.text())}", file=out)
        victim_ok = own_status == 200 and _VICTIM in hers.text()
    finally:
        attacker.close()
        victim.close()
    if status == 200 and _VICTIM in replay:
        print(f"  => EXPLOITED: the attacker is logged in as {_VICTIM}", file=out)
        return "exploited"
    if not victim_ok:
        print(f"  => BROKEN: the attacker got nothing, but neither did {_VICTIM}", file=out)
        return "broken"
    print(f"  => BLOCKED: the planted ID died at login; {_VICTIM} is still logged in", file=out)
    return "blocked"


def run_browser_demo(out: TextIO = sys.stdout, folder: Path | None = None) -> int:
    """Play the attack in Chromium against every browser example, bare then protected.

    Screenshots go to ``folder`` (created if needed), or to a new temporary
    folder; either way the demo prints where. Returns 0 when every bare app
    was exploited and every protected one blocked the attack, 1 when anything
    else happened, 2 when something it needs is missing.
    """
    from .demo import _load_examples

    if _load_examples(out) is None or _missing(out):
        return 2
    from .browser import BrowserError, Chromium, make_certificate

    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="fixguard-demo-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"fixguard demo --browser: cannot create the folder {folder}: {exc.strerror}", file=out)
        return 2
    print(
        "fixguard demo --browser: session fixation, played in headless Chromium against two example apps",
        file=out,
    )
    print(
        "served by gunicorn over https on 127.0.0.1 (a certificate made for this run, trusted by its pin).",
        file=out,
    )
    print(f"Screenshots of every step: {folder}/", file=out)
    results: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="fixguard-demo-tls-") as work:
        workdir = Path(work)
        cert = make_certificate(workdir / "tls")
        servers = {
            (name, protected): _Server(
                f"examples.{name}:{'create_protected_app()' if protected else 'app'}",
                protected, (cert.cert, cert.key), workdir,
            )
            for name in _EXAMPLES
            for protected in (False, True)
        }  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT
            for server in servers.values():
                problem = server.wait(deadline)
                if problem:
                    print(f"fixguard demo --browser: {problem}", file=out)
                    return 2
            pins = [cert.spki_pin]
            with Chromium(spki_pins=pins) as attacker, Chromium(spki_pins=pins) as victim:
                for name, (flaw, _) in _EXAMPLES.items():
                    print(f"\n== examples/{name}.py: {flaw}", file=out)
                    for protected in (False, True):
                        mode = "protected by FixGuard" if protected else "bare"
                        print(f"-- {mode}", file=out)
                        try:
                            outcome = _play(
                                name,
                                servers[name, protected],
                                protected,
                                (attacker, victim),
                                _Shots(folder),
                                out,
                            )
                        except BrowserError as exc:
                            print(f"  => ERROR: {exc}", file=out)
                            outcome = "error"
                        results.append((name, mode, outcome))
        except BrowserError as exc:
            print(f"fixguard demo --browser: Chromium failed: {exc}", file=out)
            return 2
        finally:
            for server in servers.values():
                server.stop()
    return _summary(results, folder, out)


def _summary(results: list[tuple[str, str, str]], folder: Path, out: TextIO) -> int:
    print("\nSummary:", file=out)
    failed = 0
    for name, mode, outcome in results:
        want = "exploited" if mode == "bare" else "blocked"
        mark = "as expected" if outcome == want else f"UNEXPECTED, wanted {want}"
        failed += outcome != want
        print(f"  {name:<18} {mode:<22} {outcome:<10} {mark}", file=out)
    print(f"\nScreenshots: {folder}/ (step 4 is the attacker's view after the replay)", file=out)
    if failed:
        print(f"{failed} run(s) did not go as expected.", file=out)
        return 1
    print("Every bare app was exploited; FixGuard stopped the attack on every one.", file=out)
    return 0
