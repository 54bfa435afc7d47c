"""The validated command line of ``fixguard check``: what to send, where, and as whom.

Everything the user typed is checked here, before the first request, so a
bad option is exit status 2 with a message that says what to change, never a
half-run audit. Credentials are refused in the URL (``http://user:pass@host``
would sit in argv, in the report and in any log that shows the target);
:mod:`.values` gives the ways to pass them instead.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import values
from .report import CheckError

_USER_FIELDS = ("username", "user", "login", "email", "user_name", "name")
_STATUS = re.compile(r"[1-5](?:\d\d|xx)")
_METHOD = re.compile(r"[A-Z]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers the check writes itself, per request and per client.
_OWN_HEADERS = {"host", "cookie", "content-length", "content-type", "transfer-encoding", "connection"}
IN_PROCESS_URL = "http://localhost"


def shown_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, whether or not the URL is otherwise valid."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#@]*@", lambda m: (m.group(1) or "") + "//", url)


@dataclass(frozen=True)
class Endpoint:
    """``METHOD /path`` with an optional expected status (``302``, ``3xx``)."""

    method: str
    path: str
    status: str | None = None

    @classmethod
    def parse(cls, text: str, option: str) -> Endpoint:
        words = text.split()
        if len(words) not in (2, 3) or not _METHOD.fullmatch(words[0]) or not words[1].startswith("/"):
            raise CheckError(
                f'{option} {text!r}: expected "METHOD /path" or "METHOD /path STATUS", e.g. "POST /login 302"'
            )
        status = words[2] if len(words) == 3 else None
        if status is not None and not _STATUS.fullmatch(status):
            raise CheckError(f"{option} {text!r}: the status must look like 302 or 3xx")
        return cls(words[0], words[1], status)

    def accepts(self, status: int) -> bool:
        """A success: the status given, or any status below 400 when none was."""
        if self.status is None:
            return status < 400
        return all(want in ("x", got) for want, got in zip(self.status, str(status), strict=True))

    def expectation(self) -> str:
        return f"status {self.status}" if self.status else "a status below 400"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Plan:
    """The validated command line."""

    url: str
    origin: str
    prefix: str
    https: bool
    login: Endpoint
    probe: str
    login_page: str
    start: str | None
    form: list[tuple[str, str]]
    json_body: Any
    basic: tuple[str, str] | None
    csrf: str | None
    logout: Endpoint | None
    planted: dict[str, str]
    token_field: tuple[str, ...] | None
    output: str
    timeout: float
    attacker_form: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    app: str | None = None
    secrets: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        app: str | None = getattr(args, "app", None)
        url: str | None = args.url
        if url is None:
            if app is None:
                raise CheckError("give the app's URL, or --app MODULE:ATTR to audit a WSGI app in-process")
            url = IN_PROCESS_URL
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise CheckError(
                f"URL {shown_url(url)!r}: credentials in the URL are refused (they would show in the "
                "process list, logs and this report); give them with --basic USER:@env:NAME or "
                "--form password=@env:NAME"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CheckError(f"URL {url!r}: expected http://host[:port] or https://host[:port]")
        try:
            parts.port  # noqa: B018 - raises for a port out of range or not a number
        except ValueError:
            raise CheckError(f"URL {url!r}: the port must be a number from 1 to 65535") from None
        if parts.query or parts.fragment:
            raise CheckError(f"URL {url!r}: give the site's base URL, without ?query or #fragment")
        for name, path in (
            ("--probe", args.probe),
            ("--login-page", args.login_page),
            ("--start", args.start),
        ):
            if path and not path.startswith("/"):
                raise CheckError(f"{name} {path!r}: expected a path starting with /")
        secrets: list[str] = []

        def keep(name: str, value: values.Value) -> str:
            if value.secret or "pass" in name.lower():
                secrets.append(value.text)
            return value.text

        form = [(name, keep(name, value)) for name, value in (values.pair(t, "--form") for t in args.form)]
        attacker = [
            (name, keep(name, value))
            for name, value in (values.pair(t, "--attacker-form") for t in getattr(args, "attacker_form", []))
        ]
        if args.form and args.json is not None:
            raise CheckError("--form and --json both give the login body: use one")
        json_body: Any = None
        if args.json is not None:
            body = values.resolve(args.json, "--json")
            try:
                json_body = json.loads(body.text)
            except (ValueError, RecursionError) as exc:
                raise CheckError(f"--json: not valid JSON ({exc})") from None
            if isinstance(json_body, dict):
                for name, value in json_body.items():
                    if isinstance(value, str):
                        keep(name, values.Value(value))
            if args.csrf and not isinstance(json_body, dict):
                raise CheckError("--json with --csrf: the body must be a JSON object to carry the field")
            if attacker and not isinstance(json_body, dict):
                raise CheckError("--json with --attacker-form: the body must be a JSON object")
        if attacker and not (args.form or args.json is not None):
            raise CheckError(
                "--attacker-form: names fields of a form (or JSON) login; give the login with --form "
                "or --json (with --basic the attacker logs in with the same credentials)"
            )
        basic = None
        if args.basic:
            user, password = values.basic(args.basic)
            basic = (user, keep("password", password))
        if not 0 < args.timeout <= 120:
            raise CheckError("--timeout: expected seconds between 0 and 120")
        planted = {name: value.text for name, value in (values.pair(t, "--cookie") for t in args.cookie)}
        for name in planted:
            if not _TOKEN.fullmatch(name):
                raise CheckError(f"--cookie {name!r}: not a cookie name")
        headers = [_header(text, args, keep) for text in getattr(args, "header", [])]
        login = Endpoint.parse(args.login, "--login")
        return cls(
            url=shown_url(url) if app is None else f"{app} (in-process, {url})",
            origin=f"{parts.scheme}://{parts.netloc}",
            prefix=parts.path.rstrip("/"),
            https=parts.scheme == "https",
            login=login,
            probe=args.probe,
            login_page=args.login_page or login.path,
            start=args.start or None,
            form=form,
            json_body=json_body,
            basic=basic,
            csrf=args.csrf,
            logout=Endpoint.parse(args.logout, "--logout") if args.logout else None,
            planted=planted,
            token_field=tuple(args.token_field.split(".")) if args.token_field else None,
            output=args.format,
            timeout=args.timeout,
            attacker_form=attacker,
            headers=headers,
            app=app,
            secrets=secrets,
        )

    def username(self) -> str | None:
        """The victim's name, if the credentials show it: evidence of whose page an answer is."""
        if self.basic:
            return self.basic[0]
        fields: Mapping[str, Any] = dict(self.form)
        if isinstance(self.json_body, dict):
            fields = self.json_body
        for name in _USER_FIELDS:
            value = fields.get(name)
            if isinstance(value, str) and len(value) >= 3:
                return value
        return None

    def attacker_login_form(self) -> list[tuple[str, str]]:
        """The login form of the attacker's own account: ``--form`` with ``--attacker-form`` on top."""
        given = dict(self.attacker_form)
        kept = [(name, given.get(name, value)) for name, value in self.form]
        return kept + [(name, value) for name, value in self.attacker_form if name not in dict(self.form)]

    def attacker_json(self) -> Any:
        """The JSON login body of the attacker's own account (``--attacker-form`` keys on top)."""
        if not self.attacker_form or not isinstance(self.json_body, dict):
            return self.json_body
        return {**self.json_body, **dict(self.attacker_form)}


def _header(text: str, args: argparse.Namespace, keep: Any) -> tuple[str, str]:
    """``--header "NAME: VALUE"``, sent with every request; VALUE may be a reference, and is masked."""
    name, found, raw = text.partition(":")
    name = name.strip()
    if not found or not name:
        raise CheckError(f"--header {text[:12]!r}: expected NAME: VALUE")
    if not _TOKEN.fullmatch(name):
        raise CheckError(f"--header {name!r}: not a header name")
    if name.lower() in _OWN_HEADERS:
        raise CheckError(f"--header {name}: the check sets this header itself (cookies: --cookie)")
    if name.lower() == "authorization" and (args.basic or args.token_field):
        raise CheckError("--header Authorization: --basic and --token-field use that header")
    value = values.resolve(raw.strip(), f"--header {name}")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value.text):
        raise CheckError(f"--header {name}: the value has a control character")
    return name, keep("password", value)
