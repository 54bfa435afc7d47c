"""The app the browser tests serve under gunicorn: ``tests.browser.app:app``.

It is one of the vulnerable examples (``examples/signed_cookie_app.py`` or
``examples/basic_auth_app.py``) with its views unchanged, bare or behind the
example's own ``protect()`` with fixguard's defaults (``secure=True``, cookie
``__Host-fixguard``, ``SameSite=Lax``), plus the pages a browser test needs
and the example lacks:

``GET /slow/<n>.png?ms=M``
    a 1x1 PNG answered after ``M`` milliseconds (at most 5000): a subresource
    still loading while something else happens.
``GET /parallel-login?images=N&ms=M&run=R``
    a sign-in page with ``N`` slow images that posts alice's credentials to
    ``/login`` with ``fetch`` while the images load; it sets
    ``window.loginDone`` to the login's status and counts settled images in
    ``window.imagesDone``. ``run`` is copied into every URL it loads, so the
    log tells the runs apart.
``GET /gallery?images=N&ms=M&run=R``
    a page with ``N`` slow images and a ``fetch('/profile')``, for a page load
    of parallel requests after a login (same globals, ``profileText`` too).
``POST /note``
    an action only a signed-in user may take: ``Note saved for <user>``, or
    ``401 Not logged in`` — whoever the example's own ``/profile`` view says is
    signed in. The target of a cross-site form.

These pages sit inside fixguard like every view: their requests go through it.

Outermost, :class:`Recorder` writes one JSON line per request to
``BROWSER_APP_LOG``: when it arrived and was answered, its method, path,
query and status, the fingerprint (a short hash, never the value) of each
cookie the browser *sent*, the scheme of its ``Authorization`` header, its
``Origin`` and ``Sec-Fetch-Site``, and what the response did to each cookie
(``set:<fingerprint>`` or ``clear``). Fixguard's events go, one JSON line
each, to ``BROWSER_APP_EVENTS``, and to gunicorn's error log.

Configuration, from the environment (not ``FIXGUARD_*``: those are fixguard's
own settings, and an unknown one is refused):

``BROWSER_APP_EXAMPLE``  ``signed_cookie_app`` or ``basic_auth_app``
``BROWSER_APP_MODE``     ``bare`` or ``protected``
``BROWSER_APP_SECRET``   fixguard's key (``protected``)
``BROWSER_APP_SECURE``   ``false`` for a plain-http run (default: fixguard's ``secure=True``)
``BROWSER_APP_RULES``    ``example`` (the example's login/logout rules, default) or ``none``
                         (``login=()``: only credential detection can see the login)
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request

#: Names whose values the recorder fingerprints: fixguard's cookie (either name) and the apps'.
COOKIES = ("__Host-fixguard", "fixguard", "sid", "session")
MAX_DELAY_MS = 5000
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

#: What each example's login looks like from ``fetch``: a form body, or the browser's Basic dialog.
LOGIN_BODY = {"signed_cookie_app": "username=alice&password=secret", "basic_auth_app": ""}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p id="status">loading</p>
<div>{images}</div>
<script>
window.imagesDone = 0;
window.loginDone = null;
window.profileText = null;
function settled() {{ window.imagesDone += 1; }}
for (const img of document.images) {{
  if (img.complete) {{ settled(); }} else {{ img.onload = settled; img.onerror = settled; }}
}}
{script}
</script></body></html>
"""

_LOGIN_SCRIPT = """fetch("/login?run={run}", {{method: "POST", body: {body},
  headers: {{"Content-Type": "application/x-www-form-urlencoded"}}}})
  .then(r => {{ window.loginDone = r.status; }}, e => {{ window.loginDone = String(e); }});"""

_PROFILE_SCRIPT = """fetch("/profile?run={run}").then(r => r.text()).then(
  t => {{ window.profileText = t.trim(); }}, e => {{ window.profileText = String(e); }});"""


def fingerprint(value: str) -> str:
    """A short hash of a cookie value: enough to tell values apart, useless as a cookie."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _cookies_sent(header: str) -> dict[str, str]:
    sent: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name in COOKIES:
            sent[name] = fingerprint(value)
    return sent


def _cookies_set(headers: list[tuple[str, str]]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        cookie, _, attributes = value.partition(";")
        cname, _, cvalue = cookie.strip().partition("=")
        lowered = attributes.lower().replace(" ", "")
        cleared = not cvalue or "max-age=0" in lowered or "1970" in lowered
        changes[cname] = "clear" if cleared else "set:" + fingerprint(cvalue)
    return changes


class Recorder:
    """Outermost layer: one JSON line per request to ``path`` (see the module docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str) -> None:
        self.app = app
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        entry: dict[str, Any] = {
            "arrived": time.time(),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "sent": _cookies_sent(environ.get("HTTP_COOKIE", "")),
            "authorization": environ.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0],
            "origin": environ.get("HTTP_ORIGIN", ""),
            "site": environ.get(
                "HTTP_SEC_FETCH_SITE", ""
            ),  # the browser's own word: same-origin, cross-site…
        }

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            entry.update(answered=time.time(), status=int(status[:3]), cookies=_cookies_set(headers))
            line = json.dumps(entry) + "\n"
            with self.lock, open(self.path, "a", encoding="utf-8") as log:
                log.write(line)
            return start_response(status, headers, exc_info)

        return self.app(environ, recording)


def _event_logger(path: str) -> Callable[[Any], None]:
    lock = threading.Lock()

    def on_event(event: Any) -> None:
        line = json.dumps(event.as_dict(), default=str) + "\n"
        with lock, open(path, "a", encoding="utf-8") as log:
            log.write(line)

    return on_event


def _images(count: int, delay_ms: int, run: int) -> str:
    return "".join(
        f'<img src="/slow/{i}.png?ms={delay_ms}&amp;run={run}" width="16" height="16" alt="">'
        for i in range(count)
    )


def _numbers() -> tuple[int, int, int]:
    """``images``, ``ms`` and ``run`` from the query string, bounded."""
    count = min(max(request.args.get("images", 10, type=int), 0), 50)
    delay = min(max(request.args.get("ms", 500, type=int), 0), MAX_DELAY_MS)
    return count, delay, request.args.get("run", 0, type=int)


def add_test_pages(app: Flask, example: str) -> None:
    """The pages of the module docstring, on the example's Flask app."""

    @app.get("/slow/<int:number>.png")
    def slow_image(number: int) -> Response:
        delay = min(max(request.args.get("ms", 0, type=int), 0), MAX_DELAY_MS)
        time.sleep(delay / 1000)
        return Response(PNG, mimetype="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/parallel-login")
    def parallel_login() -> Response:
        count, delay, run = _numbers()
        script = _LOGIN_SCRIPT.format(body=json.dumps(LOGIN_BODY[example]), run=run)
        page = _PAGE.format(title="Signing in", images=_images(count, delay, run), script=script)
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/gallery")
    def gallery() -> Response:
        count, delay, run = _numbers()
        script = _PROFILE_SCRIPT.format(run=run)
        page = _PAGE.format(title="Gallery", images=_images(count, delay, run), script=script)
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})

    @app.post("/note")
    def note() -> Response:
        profile = app.make_response(app.view_functions["profile"]())
        text = profile.get_data(as_text=True).strip()
        if profile.status_code != 200 or not text.startswith("Profile of "):
            return Response("Not logged in\n", status=401, mimetype="text/plain")
        return Response(f"Note saved for {text.removeprefix('Profile of ')}\n", mimetype="text/plain")


def create_app() -> Recorder:
    """The example named by the environment, with the test pages, bare or protected, recorded."""
    example = os.environ.get("BROWSER_APP_EXAMPLE", "")
    if example not in LOGIN_BODY:
        # an exception, not SystemExit: gunicorn then halts instead of respawning the worker
        raise ValueError(f"BROWSER_APP_EXAMPLE must be one of {sorted(LOGIN_BODY)}, not {example!r}")
    mode = os.environ.get("BROWSER_APP_MODE", "bare")
    if mode not in ("bare", "protected"):
        raise ValueError(f"BROWSER_APP_MODE must be 'bare' or 'protected', not {mode!r}")
    # fixguard's logger has only a NullHandler: send it to gunicorn's error log, as the README's recipe does.
    events = logging.getLogger("fixguard")
    events.handlers = logging.getLogger("gunicorn.error").handlers
    events.setLevel(logging.INFO)
    events.propagate = False
    module = importlib.import_module(f"examples.{example}")
    flask_app: Flask = module.create_app()
    add_test_pages(flask_app, example)
    if mode == "protected":
        options: dict[str, Any] = {}
        events = os.environ.get("BROWSER_APP_EVENTS")
        if events:
            options["on_event"] = _event_logger(events)
        if os.environ.get("BROWSER_APP_SECURE", "true") == "false":
            options["secure"] = False
        rules = os.environ.get("BROWSER_APP_RULES", "example")
        if rules == "none":
            options["login"] = ()
        elif rules != "example":
            raise ValueError(f"BROWSER_APP_RULES must be 'example' or 'none', not {rules!r}")
        module.protect(flask_app, secret_key=os.environ["BROWSER_APP_SECRET"], **options)
    return Recorder(flask_app, os.environ.get("BROWSER_APP_LOG", os.devnull))


_built: list[Recorder] = []


def __getattr__(name: str) -> Any:
    """``app``, built on first access (PEP 562): importing this module has no side effect."""
    if name == "app":
        if not _built:
            _built.append(create_app())
        return _built[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
