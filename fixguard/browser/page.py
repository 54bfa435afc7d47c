"""One page of a headless Chromium: navigation with the document's HTTP status, input, text, screenshots.

Everything goes through DevTools commands of the page's own session (see
:mod:`fixguard.browser.devtools`); the page's events arrive on the reader
thread and only update the state below, under a condition variable, or post
commands that need no answer (continuing a request, answering a challenge).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .devtools import TIMEOUT, BrowserError, Chromium


class Tab:
    """One page: navigation (returning the main document's HTTP status), input, text, screenshots.

    A page load counts as done at its ``load`` event. Typing and clicking go
    through DevTools' input events, as a user's would. :meth:`use_credentials`
    makes the browser answer HTTP authentication challenges itself, like a
    user filling in its dialog, once per request.
    """

    def __init__(self, browser: Chromium, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self._changed = threading.Condition()
        self._loader = ""  # the loader of the main frame's current document
        self._loaded: set[str] = set()
        self._status: dict[str, int] = {}  # loader -> HTTP status of its main document
        self._credentials: tuple[str, str] | None = None
        self._answered: set[str] = set()
        self._frame = str(self.send("Page.getFrameTree")["frameTree"]["frame"]["id"])
        browser.listen(session, self._on_event)
        for method in ("Page.enable", "Network.enable"):
            self.send(method)
        self.send("Page.setLifecycleEventsEnabled", {"enabled": True})

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command for this page."""
        return self.browser.send(method, params, self.session)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.frameNavigated" and "parentId" not in params["frame"]:
            with self._changed:
                self._loader = params["frame"]["loaderId"]
                self._changed.notify_all()
        elif method == "Page.lifecycleEvent" and (params["name"], params["frameId"]) == ("load", self._frame):
            with self._changed:
                self._loaded.add(params["loaderId"])
                self._changed.notify_all()
        elif method == "Network.responseReceived" and params.get("type") == "Document":
            if params.get("frameId") == self._frame:
                self._status[params["loaderId"]] = int(params["response"]["status"])
        elif method == "Fetch.requestPaused":
            self.browser.post("Fetch.continueRequest", {"requestId": params["requestId"]}, self.session)
        elif method == "Fetch.authRequired":
            self._answer(params)

    def _answer(self, params: dict[str, Any]) -> None:
        request = params["requestId"]
        reply: dict[str, str] = {"response": "CancelAuth"}
        server = params["authChallenge"].get("source") == "Server"
        # A second challenge for the same request means the credentials were refused: give up.
        if self._credentials and server and request not in self._answered:
            self._answered.add(request)
            username, password = self._credentials
            reply = {"response": "ProvideCredentials", "username": username, "password": password}
        self.browser.post(
            "Fetch.continueWithAuth", {"requestId": request, "authChallengeResponse": reply}, self.session
        )

    def _load(self, action: Callable[[], None], what: str, timeout: float = TIMEOUT) -> int:
        """Run ``action``, wait until the main frame has loaded a new document; its HTTP status (0: none)."""
        with self._changed:
            before = self._loader
        action()

        def loaded() -> bool:
            return self._loader not in (before, "") and self._loader in self._loaded

        with self._changed:
            if not self._changed.wait_for(loaded, timeout):
                raise BrowserError(f"{what}: no page loaded within {timeout} s")
            return self._status.get(self._loader, 0)

    def navigate(self, url: str) -> int:
        """Load ``url`` as if typed in the address bar; the HTTP status of the document."""

        def go() -> None:
            error = self.send("Page.navigate", {"url": url}).get("errorText")
            if error:
                raise BrowserError(f"loading {url}: {error}")

        return self._load(go, f"loading {url}")

    def reload(self) -> int:
        """Reload the page, as the reload button does; the HTTP status of the document."""

        def reload() -> None:
            self.send("Page.reload")

        return self._load(reload, "reloading")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            described = details.get("exception", {}).get("description", details.get("text"))
            raise BrowserError(f"JavaScript failed: {described}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout} s: {expression}")
            time.sleep(0.02)

    def text(self) -> str:
        """What the page shows, as text."""
        return str(self.evaluate("document.body ? document.body.innerText : ''")).strip()

    def type(self, selector: str, text: str) -> None:
        """Focus the field ``selector`` and type ``text`` into it."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> int:
        """Click the middle of ``selector`` with the mouse and wait for the page it loads; its status."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )

        def press() -> None:
            for kind in ("mousePressed", "mouseReleased"):
                event = {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}
                self.send("Input.dispatchMouseEvent", event)

        return self._load(press, f"clicking {selector}")

    def use_credentials(self, username: str, password: str, url_pattern: str = "*") -> None:
        """Answer the server's HTTP authentication challenges for ``url_pattern`` with these credentials."""
        self._credentials = (username, password)
        patterns = [{"urlPattern": url_pattern, "requestStage": "Request"}]
        self.send("Fetch.enable", {"patterns": patterns, "handleAuthRequests": True})

    def screenshot(self, path: Path, width: int, height: int, scale: float = 1.0) -> None:
        """Save a PNG of the page at ``width`` x ``height`` CSS pixels."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics)
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Close the page."""
        with contextlib.suppress(BrowserError):
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        self.browser.listen(self.session, None)
