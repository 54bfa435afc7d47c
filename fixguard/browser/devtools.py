"""Headless Chromium over its DevTools pipe: the browser process, the protocol, profiles.

Chromium is started with ``--remote-debugging-pipe``: DevTools commands and
events travel as NUL-terminated JSON over two pipes (the browser reads fd 3
and writes fd 4). No port is opened, no driver binary is involved and nothing
is downloaded: the only requirement is a Chromium executable (Debian's
``chromium`` package). Every browser gets a fresh, throwaway user data directory.

What it trusts: only the TLS keys whose SPKI pins it is given
(``--ignore-certificate-errors-spki-list``, honoured with a user data
directory); every other certificate error fails the page as usual. Host names
can be mapped to loopback (``--host-resolver-rules``), and background
services that would call out to the network are switched off.

:class:`Chromium` is one browser process; :meth:`Chromium.profile` opens an
isolated browser context (its own cookies and HTTP auth cache) and
:meth:`Profile.tab` a page in it (:class:`~fixguard.browser.page.Tab`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .page import Tab

#: Where Debian, Ubuntu and most distributions put the browser, in the order tried.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium (Debian: apt-get install chromium)"
TIMEOUT = 15.0  # seconds for one command or one page load

# Headless, quiet (no first-run pages, no calls home), and no automatic https upgrade of http://
# URLs: a plain-http test must reach the plain-http server it names.
_QUIET = (
    "--headless=new", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
    "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-default-apps", "--no-pings",
    "--disable-features=Translate,OptimizationHints,MediaRouter,HttpsUpgrades,InterestFeedContentSuggestions",
    "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain", "--hide-scrollbars",
    "--mute-audio", "--window-size=800,600",
)  # fmt: skip


class BrowserError(RuntimeError):
    """Chromium is missing, would not start, or a DevTools command failed."""


def find_chromium() -> str | None:
    """The path of a Chromium executable on ``PATH``, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One headless Chromium process, driven through its DevTools pipe.

    :param spki_pins: base64 SHA-256 pins of the public keys whose certificates
        are accepted despite not chaining to a trusted root (test certificates).
    :param host_rules: ``--host-resolver-rules`` entries, e.g. ``"MAP app.test 127.0.0.1"``.
    """

    def __init__(
        self,
        *,
        executable: str | None = None,
        spki_pins: Sequence[str] = (),
        host_rules: Sequence[str] = (),
        log: Path | None = None,
    ) -> None:
        path = executable or find_chromium()
        if path is None:
            raise BrowserError(f"no Chromium executable found ({', '.join(CANDIDATES)}): {INSTALL_HINT}")
        self.profile_dir = tempfile.mkdtemp(prefix="fixguard-chromium-")
        args = [path, *_QUIET, f"--user-data-dir={self.profile_dir}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        if spki_pins:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(spki_pins))
        if host_rules:
            args.append("--host-resolver-rules=" + ", ".join(host_rules))
        args.append("about:blank")
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, list[Any]] = {}  # id -> [threading.Event, reply]
        self._listeners: dict[str, Callable[[str, dict[str, Any]], None]] = {}  # session -> handler
        self.closed = False
        self.listener_errors: list[str] = []
        self.log = log or Path(self.profile_dir) / "chromium.log"
        self.pid = self._spawn(args, self.log)
        self._reader = threading.Thread(target=self._read, name="chromium-devtools", daemon=True)
        self._reader.start()
        try:
            self.version = str(self.send("Browser.getVersion")["product"])
        except BrowserError as exc:
            said = self.log.read_text(errors="replace")[-1500:].strip() if self.log.exists() else ""
            self.close()
            raise BrowserError(
                f"{path} did not start: {exc}" + (f"\nIt said:\n{said}" if said else "")
            ) from exc

    def _spawn(self, args: list[str], log: Path) -> int:
        to_browser, from_browser = os.pipe(), os.pipe()
        # Move the child's ends above 10 first, so placing them on 3 and 4 cannot clobber each other.
        child_in = fcntl.fcntl(to_browser[0], fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser[1], fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser[0], from_browser[1]):
            os.close(fd)
        sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            pid = os.posix_spawn(
                args[0],
                args,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, sink, 1),
                    (os.POSIX_SPAWN_DUP2, sink, 2),
                    (os.POSIX_SPAWN_DUP2, child_in, 3),
                    (os.POSIX_SPAWN_DUP2, child_out, 4),
                ],
                setsid=True,  # its own process group, so close() can stop every helper process
            )
        except OSError as exc:
            for fd in (to_browser[1], from_browser[0]):
                os.close(fd)
            raise BrowserError(f"cannot start {args[0]}: {exc}") from exc
        finally:
            for fd in (child_in, child_out, sink):
                os.close(fd)
        self._out, self._in = to_browser[1], from_browser[0]
        return pid

    # -- the protocol ------------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := os.read(self._in, 1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    self._dispatch(json.loads(raw))
        except (OSError, ValueError):
            pass  # the pipe closed under us, or the browser wrote garbage: it is gone for us either way
        finally:
            with self._lock:
                self.closed = True
                for slot in self._waiting.values():
                    slot[0].set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            with self._lock:
                slot = self._waiting.pop(message["id"], None)
            if slot is not None:
                slot[1] = message
                slot[0].set()
            return
        listener = self._listeners.get(message.get("sessionId", ""))
        if listener is not None:
            try:
                listener(message["method"], message.get("params", {}))
            except Exception as exc:  # a broken handler must not stop the reader: every command would hang
                self.listener_errors.append(f"{message.get('method')}: {exc!r}")

    def post(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        """Send a command without waiting for its answer (safe from an event handler)."""
        return self._write(method, params, session, None)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = "", timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """Send a command and return its result; a DevTools error or a timeout raises BrowserError."""
        slot: list[Any] = [threading.Event(), None]
        self._write(method, params, session, slot)
        if not slot[0].wait(timeout):
            raise BrowserError(f"Chromium did not answer {method} within {timeout} s")
        reply: dict[str, Any] | None = slot[1]
        if reply is None:
            raise BrowserError(f"Chromium exited while answering {method}")
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _write(self, method: str, params: dict[str, Any] | None, session: str, slot: list[Any] | None) -> int:
        message: dict[str, Any] = {"method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        with self._lock:
            if self.closed:
                raise BrowserError(f"Chromium is not running (while sending {method})")
            self._next_id += 1
            message["id"] = self._next_id
            if slot is not None:
                self._waiting[self._next_id] = slot
            data = json.dumps(message).encode() + b"\0"
            while data:
                data = data[os.write(self._out, data) :]
            return self._next_id

    def listen(self, session: str, handler: Callable[[str, dict[str, Any]], None] | None) -> None:
        """Deliver the events of ``session`` to ``handler`` (on the reader thread), or stop."""
        if handler is None:
            self._listeners.pop(session, None)
        else:
            self._listeners[session] = handler

    # -- profiles and life cycle -------------------------------------------------------------

    def profile(self) -> Profile:
        """A fresh browser context: no cookies, no cache, no remembered credentials."""
        context = str(self.send("Target.createBrowserContext")["browserContextId"])
        return Profile(self, context)

    def close(self) -> None:
        """Ask the browser to exit, then kill its process group; remove its profile directory."""
        with contextlib.suppress(BrowserError, OSError):
            if not self.closed:
                self.post("Browser.close")
        deadline = time.monotonic() + 3
        with contextlib.suppress(ChildProcessError):  # already reaped: nothing left that is ours
            # WNOWAIT leaves the browser a zombie, so its PID, our process group's ID, cannot be
            # reused by anyone before the killpg below.
            while time.monotonic() < deadline:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    break
                time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # helper processes, or a browser that hung
            os.waitpid(self.pid, 0)
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile_dir, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Profile:
    """One browser context of a :class:`Chromium`: what one user's browser holds."""

    def __init__(self, browser: Chromium, context: str) -> None:
        self.browser = browser
        self.context = context

    def tab(self, width: int = 800, height: int = 600) -> Tab:
        """A new page in this profile."""
        from .page import Tab  # the page module needs this one's BrowserError

        target = self.browser.send(
            "Target.createTarget",
            {"url": "about:blank", "browserContextId": self.context, "width": width, "height": height},
        )["targetId"]
        session = self.browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Tab(self.browser, str(target), str(session["sessionId"]))

    def cookies(self) -> list[dict[str, Any]]:
        """Every cookie this profile stores, as DevTools describes them (HttpOnly ones included)."""
        found = self.browser.send("Storage.getCookies", {"browserContextId": self.context})["cookies"]
        return list(found)

    def set_cookie(self, cookie: dict[str, Any], url: str) -> None:
        """Store ``cookie`` (a dict from :meth:`cookies`) as if ``url`` had set it, host-only."""
        keep = ("name", "value", "path", "secure", "httpOnly", "sameSite")
        param = {key: cookie[key] for key in keep if key in cookie}
        param["url"] = url
        self.browser.send("Storage.setCookies", {"cookies": [param], "browserContextId": self.context})

    def clear_cookies(self) -> None:
        """Forget every cookie of this profile (its pages and connections stay)."""
        self.browser.send("Storage.clearCookies", {"browserContextId": self.context})

    def close(self) -> None:
        """Dispose of the context and every page in it."""
        with contextlib.suppress(BrowserError):
            self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})
