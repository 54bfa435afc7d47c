"""What the browser tests are made of: the served apps, the people at the browsers, the other site.

* :class:`Servers` starts one gunicorn per :data:`CONFIGS` entry at once (gthread
  workers, https with the test certificate unless the entry says plain http)
  and hands each out when it answers. Each serves ``tests.browser.app:app``
  and keeps its request log and fixguard's events in files (see that module).
* :class:`Person` is someone at a browser: a fresh profile (a browser context:
  its own cookies and remembered credentials) and a tab in it.
* :class:`OtherSite` is a site on another origin and another site altogether
  (``http://evil.test:<port>``, mapped to loopback in the browsers): a page
  with a form that posts to the app and a link to it.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests

from fixguard.browser import LoopbackCertificate, Profile, Tab

from ..servers import HOST, Gunicorn, Gunicorns

APP = "tests.browser.app:app"
START_TIMEOUT = 20  # seconds for every server to answer, all started at once
THREADS = 12  # per server: a browser opens up to six connections per host, and there are two browsers
ALICE = ("alice", "secret")
SESSION_ENDED = "This session has ended. Please sign in again."  # fixguard's refusal, in its page
OTHER_SITE = "evil.test"  # another site, mapped to 127.0.0.1 in the browsers
APP_NAME = "app.test"  # a name for the app that is not localhost, mapped to 127.0.0.1 too
HOST_RULES = (f"MAP {OTHER_SITE} {HOST}", f"MAP {APP_NAME} {HOST}")


@dataclass(frozen=True)
class Config:
    """How one server runs: which example, bare or protected, fixguard's rules and transport."""

    example: str
    mode: str
    rules: str = "example"  # "none": login=(), only credential detection sees a login
    secure: bool = True  # fixguard's default
    tls: bool = True


CONFIGS = {
    "signed-bare": Config("signed_cookie_app", "bare"),
    "signed-protected": Config("signed_cookie_app", "protected"),
    "basic-bare": Config("basic_auth_app", "bare"),
    "basic-protected": Config("basic_auth_app", "protected"),
    "basic-detect": Config("basic_auth_app", "protected", rules="none"),
    "http-bare": Config("signed_cookie_app", "bare", tls=False),
    "http-secure-false": Config("signed_cookie_app", "protected", secure=False, tls=False),
    "http-secure-true": Config("signed_cookie_app", "protected", tls=False),
}


@dataclass
class Served:
    """One running server of :class:`Servers`."""

    name: str
    config: Config
    gunicorn: Gunicorn
    requests_file: Path
    events_file: Path

    @property
    def base(self) -> str:
        """``https://127.0.0.1:<port>`` (``http`` for a plain-http entry)."""
        return self.gunicorn.base

    def url(self, path: str, host: str = HOST) -> str:
        """``path`` on this server, reached under ``host`` (mapped to loopback in the browsers)."""
        return f"{self.gunicorn.scheme}://{host}:{self.gunicorn.port}{path}"

    def mark(self) -> tuple[int, int]:
        """How many requests and events are logged so far: what a test's own start looks like."""
        return len(_lines(self.requests_file)), len(_lines(self.events_file))

    def records(self, since: tuple[int, int] = (0, 0), **match: Any) -> list[dict[str, Any]]:
        """The request log (see ``tests.browser.app``) after ``since``; the entries matching ``match``."""
        found = [json.loads(line) for line in _lines(self.requests_file)[since[0] :]]
        return [r for r in found if all(r.get(k) == v for k, v in match.items())]

    def events(self, since: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
        """fixguard's events after ``since``, as dictionaries."""
        return [json.loads(line) for line in _lines(self.events_file)[since[1] :]]

    def log_text(self) -> str:
        return self.gunicorn.log_text()


def _lines(path: Path) -> list[str]:
    """The complete lines of a log file (a line still being written is not one yet)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [line for line in text[: text.rfind("\n") + 1].splitlines() if line]


class Servers:
    """Every :data:`CONFIGS` server, started at once; ``servers[name]`` waits until that one answers."""

    def __init__(self, pool: Gunicorns, workdir: Path, certificate: LoopbackCertificate) -> None:
        self.certificate = certificate
        self.deadline = time.monotonic() + START_TIMEOUT
        self.ready: set[str] = set()
        self.started: dict[str, Served] = {}
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("FIXGUARD_")}
        for name, config in CONFIGS.items():
            files = workdir / f"{name}-requests.jsonl", workdir / f"{name}-events.jsonl"
            env = {
                **base_env,
                "BROWSER_APP_EXAMPLE": config.example,
                "BROWSER_APP_MODE": config.mode,
                "BROWSER_APP_SECRET": secrets.token_urlsafe(48),
                "BROWSER_APP_SECURE": "true" if config.secure else "false",
                "BROWSER_APP_RULES": config.rules,
                "BROWSER_APP_LOG": str(files[0]),
                "BROWSER_APP_EVENTS": str(files[1]),
            }
            tls = (certificate.cert, certificate.key) if config.tls else None
            server = pool.start(name, APP, env, threads=THREADS, tls=tls)
            self.started[name] = Served(name, config, server, *files)

    def __getitem__(self, name: str) -> Served:
        served = self.started[name]
        if name not in self.ready:
            verify = str(self.certificate.cert)
            served.gunicorn.wait_ready(
                within=START_TIMEOUT,
                deadline=max(self.deadline, time.monotonic() + 5),  # it had the time to boot already
                probe=lambda base: requests.get(base + "/login", timeout=2, verify=verify).status_code == 200,
            )
            self.ready.add(name)
        return served


def verdict(page: tuple[int, str]) -> str:
    """What a page (status, text) shows: ``"alice"`` (her profile), ``"ended"`` (refused), or itself."""
    if page == (200, "Profile of alice"):
        return "alice"
    if page[0] == 401 and SESSION_ENDED in page[1]:
        return "ended"
    return repr(page)


class Person:
    """Someone at a browser: a fresh profile and one tab in it."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.tab: Tab = profile.tab()

    def open(self, url: str) -> tuple[int, str]:
        """Go to ``url``; the status and the text of the page."""
        status = self.tab.navigate(url)
        return status, self.tab.text()

    def reload(self) -> tuple[int, str]:
        """Reload the page; its status and text."""
        status = self.tab.reload()
        return status, self.tab.text()

    def cookies(self) -> list[dict[str, Any]]:
        """Every cookie the browser stores for this person."""
        return self.profile.cookies()

    def sign_in(self, served: Served, host: str = HOST) -> tuple[int, str]:
        """Sign in as alice through the example's own page, as a person would; status and text after.

        The form example gets its fields typed and its button clicked; the Basic
        Auth example gets its button clicked and the browser answers the
        server's challenge with alice's credentials, as its dialog would.
        """
        self.open(served.url("/login", host))
        if served.config.example == "signed_cookie_app":
            self.tab.type("input[name=username]", ALICE[0])
            self.tab.type("input[name=password]", ALICE[1])
        else:
            self.tab.use_credentials(*ALICE, url_pattern="*/login")
        status = self.tab.click("button")
        return status, self.tab.text()

    def close(self) -> None:
        self.profile.close()


def plant(attacker: Person, victim: Person, served: Served) -> list[dict[str, Any]]:
    """Every cookie the attacker's browser holds for the app, read and stored in the victim's via DevTools."""
    cookies = attacker.cookies()
    assert cookies, "the attacker's browser holds no cookie to plant"
    for cookie in cookies:
        victim.profile.set_cookie(cookie, served.url("/"))
    return cookies


class OtherSite:
    """``http://evil.test:<port>/?target=<app>``: a form posting to ``<app>/note``, a link to ``/profile``."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer((HOST, 0), _OtherSitePage)
        self.thread = threading.Thread(target=self.server.serve_forever, name="other-site", daemon=True)
        self.thread.start()

    def page(self, served: Served) -> str:
        return f"http://{OTHER_SITE}:{self.server.server_address[1]}/?target={quote(served.base, safe='')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _OtherSitePage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        target = parse_qs(urlsplit(self.path).query).get("target", [""])[0]
        if urlsplit(target).hostname != HOST:  # only ever points at the tests' own servers
            self.send_error(400)
            return
        page = (
            "<!doctype html><html><head><title>Another site</title></head><body>"
            f'<form method="post" action="{html.escape(target)}/note">'
            '<input type="hidden" name="text" value="hello"><button id="post">Post a note</button></form>'
            f'<p><a id="link" href="{html.escape(target)}/profile">Your profile</a></p></body></html>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass
