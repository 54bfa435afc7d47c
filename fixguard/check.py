"""``fixguard check``: audit a running web app for session fixation (OWASP WSTG-SESS-03).

The check plays the test an auditor plays by hand, against one URL, for any
app, with or without fixguard in front of it:

1. an anonymous visitor asks for the ``--probe`` page: the *anonymous answer*;
2. an attacker visits the site and keeps whatever cookies (and token) he is
   given; he plants them in the victim's client;
3. the victim logs in with the credentials given; her answer for the probe
   page is the *authenticated answer*. Which of her cookies carry the session
   is found by dropping each in turn and asking the probe again;
4. the attacker replays what he held before the login;
5. another victim arrives with a session ID the check *chose*, and logs in;
6. with ``--logout``, the victim logs out, and her old ID is replayed;
7. with ``--token-field``, the same for a bearer token: one the client chose,
   and one issued before login.

Whether an answer is "authenticated" is judged against both references: it
must resemble the victim's authenticated answer (status, redirect target,
body similarity, the user's name) more than the anonymous one. So an app that
already rotates its session at login — Django's ``login()`` does — gets no
finding, and the check refuses to run (exit 2) when the login does not
visibly authenticate the probe at all.

It talks only to the URL given: redirects are not followed, proxies and
``.netrc`` from the environment are ignored, every request has a timeout, and
the number of requests is bounded (about 30). Cookie values, tokens and CSRF
tokens are printed as their first few characters only.

Exit status: 0 no finding, 1 findings, 2 could not run (and why).
"""

from __future__ import annotations

import argparse
import difflib
import email.utils
import html
import html.parser
import importlib
import json
import re
import secrets
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any, TextIO
from urllib.parse import urlsplit

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

# Results of one check. A warning is reported but is not a finding.
OK, FAIL, WARN, NA = "pass", "fail", "warn", "n/a"

#: Every check, in report order: id -> title.
CHECKS = {
    "login-rotates-id": "session ID changes at login",
    "pre-login-id-dead": "pre-login ID gets no access after login",
    "chosen-id-refused": "client-chosen ID is not adopted",
    "logout-ends-session": "session ends at logout",
    "logout-id-dead": "old ID stays dead after logout",
    "cookie-httponly": "session cookie: HttpOnly",
    "cookie-secure": "session cookie: Secure",
    "cookie-samesite": "session cookie: SameSite",
    "cookie-host-prefix": "session cookie: __Host- prefix",
    "token-chosen-refused": "client-chosen bearer token is not adopted",
    "token-pre-login-dead": "pre-login bearer token refused after login",
}

USER_AGENT = "fixguard-check/0.1 (+OWASP WSTG-SESS-03)"
MAX_BODY = 512 * 1024  # bytes read of any answer
MAX_DROP_TEST = 16  # cookies tried one by one to find the session cookies
_COMPARED = 20_000  # characters of a body compared
_EXCERPT = 60
_MIN_SECRET = 8  # shorter values are not worth redacting (and would mangle words)
_USER_FIELDS = ("username", "user", "login", "email", "user_name", "name")
_STATUS = re.compile(r"[1-5](?:\d\d|xx)")
_METHOD = re.compile(r"[A-Z]+")
INSTALL_HINT = "pip install requests (or: pip install 'fixguard[check]')"


class CheckError(Exception):
    """The check could not run; the message says why (exit status 2)."""


# --------------------------------------------------------------------------- parsing


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


def _pair(text: str, option: str, sep: str = "=") -> tuple[str, str]:
    name, found, value = text.partition(sep)
    if not found or not name:
        raise CheckError(f"{option} {text!r}: expected NAME{sep}VALUE")
    return name, value


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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        parts = urlsplit(args.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CheckError(f"URL {args.url!r}: expected http://host[:port] or https://host[:port]")
        if parts.query or parts.fragment:
            raise CheckError(f"URL {args.url!r}: give the site's base URL, without ?query or #fragment")
        for name, path in (
            ("--probe", args.probe),
            ("--login-page", args.login_page),
            ("--start", args.start),
        ):
            if path and not path.startswith("/"):
                raise CheckError(f"{name} {path!r}: expected a path starting with /")
        if args.form and args.json is not None:
            raise CheckError("--form and --json both give the login body: use one")
        json_body: Any = None
        if args.json is not None:
            try:
                json_body = json.loads(args.json)
            except ValueError as exc:
                raise CheckError(f"--json: not valid JSON ({exc})") from None
            if args.csrf and not isinstance(json_body, dict):
                raise CheckError("--json with --csrf: the body must be a JSON object to carry the field")
        basic = _pair(args.basic, "--basic", ":") if args.basic else None
        if not 0 < args.timeout <= 120:
            raise CheckError("--timeout: expected seconds between 0 and 120")
        planted = dict(_pair(text, "--cookie") for text in args.cookie)
        for name in planted:
            if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
                raise CheckError(f"--cookie {name!r}: not a cookie name")
        login = Endpoint.parse(args.login, "--login")
        return cls(
            url=args.url,
            origin=f"{parts.scheme}://{parts.netloc}",
            prefix=parts.path.rstrip("/"),
            https=parts.scheme == "https",
            login=login,
            probe=args.probe,
            login_page=args.login_page or login.path,
            start=args.start or None,
            form=[_pair(text, "--form") for text in args.form],
            json_body=json_body,
            basic=basic,
            csrf=args.csrf,
            logout=Endpoint.parse(args.logout, "--logout") if args.logout else None,
            planted=planted,
            token_field=tuple(args.token_field.split(".")) if args.token_field else None,
            output=args.format,
            timeout=args.timeout,
        )

    def username(self) -> str | None:
        """The user's name, if the credentials show it: evidence of whose page an answer is."""
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


# --------------------------------------------------------------------------- HTTP


@dataclass
class SetCookie:
    """One ``Set-Cookie`` header: name, value and attributes (lower-case names)."""

    name: str
    value: str
    attrs: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie | None:
        first, *rest = header.split(";")
        name, found, value = first.partition("=")
        if not found or not name.strip():
            return None
        attrs = {}
        for part in rest:
            key, _, val = part.partition("=")
            if key.strip():
                attrs[key.strip().lower()] = val.strip()
        return cls(name.strip(), value.strip(), attrs)

    @property
    def deletes(self) -> bool:
        """Max-Age <= 0, or Expires in the past: the client must forget the cookie."""
        if "max-age" in self.attrs:
            try:
                return int(self.attrs["max-age"]) <= 0
            except ValueError:
                return False
        if "expires" in self.attrs:
            try:
                when = email.utils.parsedate_to_datetime(self.attrs["expires"])
            except (TypeError, ValueError, IndexError):
                return False
            return when.timestamp() <= time.time()
        return False


@dataclass
class Answer:
    """What the check keeps of one response."""

    method: str
    path: str
    status: int
    location: str
    content_type: str
    body: str
    set_cookies: list[SetCookie]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _RefuseCookies(DefaultCookiePolicy):
    """requests' cookie jar stays empty: the check keeps its own jars, one per client."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


def _load_requests() -> Any:
    try:
        return importlib.import_module("requests")
    except ImportError:
        raise CheckError(f"fixguard check needs the requests library: {INSTALL_HINT}") from None


class Http:
    """Requests to one origin: no redirects, no proxies, a timeout on every request."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.requests = _load_requests()
        self.session = self.requests.Session()
        self.session.trust_env = False  # no proxy, no .netrc: only the URL given
        self.session.cookies.set_policy(_RefuseCookies())
        self.sent = 0

    def close(self) -> None:
        self.session.close()

    def send(
        self,
        method: str,
        path: str,
        cookies: Mapping[str, str],
        *,
        form: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        basic: tuple[str, str] | None = None,
        bearer: str | None = None,
        referer: str | None = None,
    ) -> Answer:
        plan = self.plan
        headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/json;q=0.9,*/*;q=0.8"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if method not in ("GET", "HEAD"):  # what a browser sends with a form: Django checks both on https
            headers["Origin"] = plan.origin
            headers["Referer"] = plan.origin + plan.prefix + (referer or "/")
        self.sent += 1
        exc_types = self.requests.exceptions
        try:
            response = self.session.request(
                method,
                plan.origin + plan.prefix + path,
                headers=headers,
                data=form if form is not None else None,
                json=json_body,
                auth=basic,
                timeout=plan.timeout,
                allow_redirects=False,
                stream=True,
            )
            try:
                chunks, size = [], 0
                for chunk in response.iter_content(65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_BODY:
                        break
                raw_cookies = response.raw.headers.getlist("Set-Cookie")
            finally:
                response.close()
        except exc_types.Timeout:
            raise CheckError(
                f"{method} {path}: no answer from {plan.origin} within {plan.timeout:g} s"
            ) from None
        except exc_types.ConnectionError as exc:
            raise CheckError(f"{method} {path}: could not connect to {plan.origin}: {_why(exc)}") from None
        except exc_types.RequestException as exc:
            raise CheckError(f"{method} {path}: {type(exc).__name__}: {_why(exc)}") from None
        cookies_set = [c for c in (SetCookie.parse(h) for h in raw_cookies) if c is not None]
        return Answer(
            method=method,
            path=path,
            status=int(response.status_code),
            location=response.headers.get("Location", ""),
            content_type=response.headers.get("Content-Type", ""),
            body=b"".join(chunks)[:MAX_BODY].decode("utf-8", errors="replace"),
            set_cookies=cookies_set,
        )


def _why(exc: BaseException) -> str:
    text = str(exc)
    for needle, said in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "the server closed the connection"),
    ):
        if needle in text:
            return said
    return text[-160:]


# --------------------------------------------------------------------------- judging answers


def _ratio(a: str, b: str) -> float:
    a, b = a[:_COMPARED], b[:_COMPARED]
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if len(a) <= 2000 and len(b) <= 2000:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False).ratio()


def similarity(a: Answer, b: Answer) -> float:
    """0..1: same status, same redirect target, then how alike the bodies are."""
    if a.status != b.status:
        return 0.0
    if a.location != b.location:
        return 0.2
    return _ratio(a.body, b.body)


class Judge:
    """Tells authenticated answers for one page from anonymous ones.

    An answer counts as authenticated when it resembles the victim's own
    authenticated answer more than an anonymous visitor's (and at least half),
    or when it has the authenticated status and names the user where the
    anonymous answer does not.
    """

    def __init__(self, authenticated: Answer, anonymous: Answer, user: str | None) -> None:
        self.auth = authenticated
        self.anon = anonymous
        self.marker = user if user and user in authenticated.body and user not in anonymous.body else None

    @property
    def distinct(self) -> bool:
        """The two references can be told apart at all."""
        return self.marker is not None or similarity(self.auth, self.anon) < 0.98

    def authenticated(self, answer: Answer) -> bool:
        if self.marker and answer.status == self.auth.status and self.marker in answer.body:
            return True
        to_auth, to_anon = similarity(answer, self.auth), similarity(answer, self.anon)
        return to_auth >= 0.5 and to_auth > to_anon

    def verdict(self, answer: Answer) -> str:
        if self.authenticated(answer):
            return "the victim's authenticated answer"
        if similarity(answer, self.anon) >= 0.5:
            return "an anonymous visitor's answer"
        return "neither the victim's nor an anonymous answer"


# --------------------------------------------------------------------------- display


def mask(value: str) -> str:
    """The first few characters of a secret, then an ellipsis."""
    keep = 6 if len(value) >= 16 else max(1, len(value) // 3)
    return value[:keep] + "…"


class Redactor:
    """Remembers every secret seen and masks it in anything printed."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                self.secrets.add(value)

    def clean(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, mask(secret))
        return text


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I)


_SECRET_RUN = re.compile(r"[A-Za-z0-9_\-+=~%]{20,}")


def mask_runs(text: str) -> str:
    """Mask what looks like an ID or a token: 20+ characters of letters mixed with digits."""

    def one(found: re.Match[str]) -> str:
        run = found.group(0)
        return mask(run) if re.search(r"\d", run) and re.search(r"[A-Za-z]", run) else run

    return _SECRET_RUN.sub(one, text)


def excerpt(answer: Answer, clean: Callable[[str], str] = mask_runs) -> str:
    """``401 "Not logged in"``, ``302 -> /login``: an answer in a few words, secrets masked."""
    if answer.location:
        return f"{answer.status} -> {clean(answer.location)}"
    body = answer.body.strip()
    if "html" in answer.content_type or body.startswith("<"):
        found = _TITLE.search(body)
        text = " ".join(html.unescape(found.group(1)).split()) if found else "an HTML page"
    else:
        text = next((line.strip() for line in body.splitlines() if line.strip()), "")
    text = clean(text)  # before cutting: a secret cut in half would no longer be recognised
    if len(text) > _EXCERPT:
        text = text[: _EXCERPT - 1] + "…"
    return f'{answer.status} "{text}"' if text else f"{answer.status} (empty)"


def _cookies(jar: Mapping[str, str], names: Iterable[str] | None = None) -> str:
    chosen = list(names) if names is not None else list(jar)
    return ", ".join(f"{name}={mask(jar[name])}" for name in chosen if name in jar) or "no cookie"


class _Forms(html.parser.HTMLParser):
    """Each form's action and hidden fields; ``<meta name=… content=…>`` tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str | None, list[tuple[str, str]]]] = [(None, [])]  # [0]: outside any form
        self.current = 0
        self.metas: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append((found.get("action", ""), []))
            self.current = len(self.forms) - 1
        elif tag == "input" and found.get("name") and found.get("type", "").lower() == "hidden":
            self.forms[self.current][1].append((found["name"], found.get("value", "")))
        elif tag == "meta" and found.get("name"):
            self.metas.setdefault(found["name"], found.get("content", ""))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = 0


def hidden_fields(answer: Answer, name: str, action: str | None = None) -> list[tuple[str, str]] | None:
    """The hidden fields a browser would send with the form that carries ``name``.

    The form whose action ends with ``action`` is preferred. Also finds the
    token in ``<meta name=NAME content=…>`` or as a top-level JSON key (then
    it is the only field). None if the answer has no such field.
    """
    document = answer.json()
    if isinstance(document, dict) and isinstance(document.get(name), str):
        return [(name, str(document[name]))]
    parser = _Forms()
    try:
        parser.feed(answer.body)
        parser.close()
    except Exception:  # noqa: S110 - a page the parser chokes on simply has no field
        pass
    carrying = [(where, fields) for where, fields in parser.forms if any(n == name for n, _ in fields)]
    preferred = [
        fields for where, fields in carrying if action and where and where.split("?")[0].endswith(action)
    ]
    if preferred or carrying:
        return (preferred or [fields for _, fields in carrying])[0]
    if name in parser.metas:
        return [(name, parser.metas[name])]
    return None


def find_token(answer: Answer, path: tuple[str, ...]) -> str | None:
    """The string at a dotted path of a JSON answer (``access_token``, ``data.token``)."""
    node = answer.json()
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) and node else None


# --------------------------------------------------------------------------- the audit


@dataclass
class Client:
    """One browser: its own cookie jar."""

    jar: dict[str, str] = field(default_factory=dict)

    def absorb(self, answer: Answer) -> None:
        for cookie in answer.set_cookies:
            if cookie.deletes:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value


@dataclass
class Result:
    id: str
    result: str
    evidence: str

    @property
    def title(self) -> str:
        return CHECKS[self.id]


class Audit:
    """One run of the check; ``results`` and ``context`` fill in as it goes."""

    def __init__(self, plan: Plan, http: Http) -> None:
        self.plan = plan
        self.http = http
        self.redactor = Redactor()
        self.results: dict[str, Result] = {}
        self.context: dict[str, Any] = {}
        self.attrs: dict[str, SetCookie] = {}  # the last Set-Cookie that set each name
        if plan.basic:
            self.redactor.add(plan.basic[1])
        self.redactor.add(*(value for name, value in plan.form if "pass" in name.lower()))
        self.redactor.add(*plan.planted.values())

    # -- helpers

    def show(self, answer: Answer) -> str:
        """:func:`excerpt`, with every secret seen so far masked."""
        return excerpt(answer, lambda text: mask_runs(self.redactor.clean(text)))

    def record(self, check: str, result: str, evidence: str) -> None:
        self.results[check] = Result(check, result, evidence)

    def send(self, method: str, path: str, client: Client | Mapping[str, str], **kwargs: Any) -> Answer:
        jar = client.jar if isinstance(client, Client) else client
        answer = self.http.send(method, path, jar, **kwargs)
        for cookie in answer.set_cookies:
            self.redactor.add(cookie.value)
            if not cookie.deletes:
                self.attrs[cookie.name] = cookie
        if isinstance(client, Client):
            client.absorb(answer)
        return answer

    def probe(self, client: Client | Mapping[str, str], bearer: str | None = None) -> Answer:
        return self.send("GET", self.plan.probe, client, bearer=bearer)

    def csrf_fields(self, page: Answer, action: str) -> list[tuple[str, str]] | None:
        """The hidden fields of the form carrying the ``--csrf`` field; its token is redacted."""
        assert self.plan.csrf is not None
        fields = hidden_fields(page, self.plan.csrf, action)
        for name, value in fields or ():
            if name == self.plan.csrf:
                self.redactor.add(value)
        return fields

    def visit(self, client: Client) -> tuple[list[Answer], list[tuple[str, str]]]:
        """A first visit: the start page, then the login page for its CSRF token.

        Returns the answers and the hidden fields of the login form (with
        ``--csrf``): a browser sends them all, e.g. Django's ``next``.
        """
        plan = self.plan
        answers = []
        if plan.start:
            answers.append(self.send("GET", plan.start, client))
        hidden: list[tuple[str, str]] = []
        if plan.csrf:
            page = self.send("GET", plan.login_page, client)
            answers.append(page)
            found = self.csrf_fields(page, plan.login.path)
            if found is None:
                raise CheckError(
                    f"--csrf {plan.csrf}: no such hidden field in GET {plan.login_page} "
                    f"({self.show(page)}); name the form's field, or give --login-page"
                )
            hidden = found
        return answers, hidden

    def login(self, client: Client, hidden: list[tuple[str, str]], bearer: str | None = None) -> Answer:
        plan = self.plan
        form: list[tuple[str, str]] | None = None
        json_body: Any = None
        if plan.json_body is not None:
            json_body = plan.json_body
            token = dict(hidden).get(plan.csrf or "")
            if plan.csrf and token is not None:
                json_body = {**plan.json_body, plan.csrf: token}
        elif plan.form or hidden:
            given = {name for name, _ in plan.form}
            form = [(name, value) for name, value in hidden if name not in given] + list(plan.form)
        answer = self.send(
            plan.login.method,
            plan.login.path,
            client,
            form=form,
            json_body=json_body,
            basic=plan.basic,
            bearer=bearer,
            referer=plan.login_page,
        )
        if plan.token_field:
            self.redactor.add(find_token(answer, plan.token_field))
        return answer

    def login_failed(self, answer: Answer) -> CheckError:
        return CheckError(
            f"login failed: {self.plan.login} answered {self.show(answer)}, expected "
            f"{self.plan.login.expectation()}; check the credentials"
            + ("" if self.plan.csrf else ", and whether the form needs --csrf FIELD")
        )

    # -- the run

    def run(self) -> None:
        plan = self.plan
        anonymous = self.probe({})
        self.context["anonymous_probe"] = self.show(anonymous)

        # The attacker visits and keeps what he is given; the victim gets it planted.
        attacker = Client()
        attacker_pages, _ = self.visit(attacker)
        planted_jar = dict(attacker.jar)
        planted_token = None
        if plan.token_field:
            planted_token = next(
                (t for t in (find_token(a, plan.token_field) for a in attacker_pages) if t), None
            )
            self.redactor.add(planted_token)
        victim = Client(dict(planted_jar))
        _, hidden = self.visit(victim)
        before_login = dict(victim.jar)
        login = self.login(victim, hidden)
        after_login = dict(victim.jar)
        self.context["login"] = f"{plan.login} -> {self.show(login)}"
        if not plan.login.accepts(login.status):
            raise self.login_failed(login)

        authenticated = self.probe(victim)
        cookie_judge = Judge(authenticated, anonymous, plan.username())
        token = find_token(login, plan.token_field) if plan.token_field else None
        if plan.token_field and token is None:
            raise CheckError(
                f"--token-field {'.'.join(plan.token_field)}: the login answer ({self.show(login)}) "
                "has no such JSON field"
            )
        token_judge = None
        if token is not None:
            token_answer = self.probe({}, bearer=token)
            token_judge = Judge(token_answer, anonymous, plan.username())
            self.context["token_probe"] = self.show(token_answer)
            if not token_judge.distinct:
                token_judge = None
        if not cookie_judge.distinct and token_judge is None:
            raise CheckError(
                f"login did not authenticate: after {plan.login} ({self.show(login)}), GET {plan.probe} "
                f"answers {self.show(authenticated)}, as it does for an anonymous visitor; check the "
                "credentials, --probe (a page only a logged-in user sees)"
                + ("" if plan.csrf else ", --csrf FIELD")
                + ("" if plan.login.status else ', or give the login\'s success status ("POST /login 302")')
            )

        session_names: list[str] = []
        if cookie_judge.distinct:
            self.context["authenticated_probe"] = self.show(authenticated)
            session_names = self.session_cookies(victim, cookie_judge, login)
            self.context["session_cookies"] = session_names
            self.check_rotation(session_names, planted_jar, before_login, after_login)
            self.check_pre_login_replay(session_names, planted_jar, before_login, cookie_judge)
            self.check_chosen_id(session_names, cookie_judge)
        else:
            why = f"the login sets no cookie that GET {plan.probe} needs (the session is the bearer token)"
            for check in ("login-rotates-id", "pre-login-id-dead", "chosen-id-refused"):
                self.record(check, NA, why)
        self.check_cookie_attributes(session_names)

        if token_judge is not None and token is not None:
            self.check_tokens(token_judge, planted_token)
        else:
            why = (
                "not asked (--token-field FIELD names the login answer's token)"
                if not plan.token_field
                else f"the login's token does not authenticate GET {plan.probe}"
            )
            self.record("token-chosen-refused", NA, why)
            self.record("token-pre-login-dead", NA, why)

        if plan.logout is None:
            for check in ("logout-ends-session", "logout-id-dead"):
                self.record(check, NA, "not asked (--logout METHOD /path)")
        else:
            self.check_logout(
                victim, authenticated, cookie_judge if cookie_judge.distinct else None, token, token_judge
            )

    def session_cookies(self, victim: Client, judge: Judge, login: Answer) -> list[str]:
        """The cookies the probe needs after login: dropping one loses the session."""
        names = list(victim.jar)
        if not names:
            return []
        if len(names) == 1:
            return names
        if len(names) <= MAX_DROP_TEST:
            needed = [
                name
                for name in names
                if not judge.authenticated(self.probe({k: v for k, v in victim.jar.items() if k != name}))
            ]
            if needed:
                return needed
        set_by_login = [c.name for c in login.set_cookies if not c.deletes and c.name in victim.jar]
        return set_by_login or names

    def check_rotation(
        self, names: list[str], planted: dict[str, str], before: dict[str, str], after: dict[str, str]
    ) -> None:
        notes, unchanged, existed = [], False, False
        for name in names:
            old, new = before.get(name), after.get(name)
            origin = " (planted by the attacker)" if old is not None and planted.get(name) == old else ""
            if old is None:
                notes.append(f"{name}: none before login, {mask(new or '')} issued by the login")
                continue
            existed = True
            if new == old:
                unchanged = True
                notes.append(f"{name}: {mask(old)}{origin} before login and still {mask(old)} after it")
            else:
                notes.append(f"{name}: {mask(old)}{origin} before login, {mask(new or '')} after it")
        if not existed:
            self.record(
                "login-rotates-id",
                NA,
                f"no session cookie before login ({'; '.join(notes) or 'none'}); "
                "the client-chosen ID check covers planting one",
            )
        elif unchanged:
            self.record("login-rotates-id", FAIL, "; ".join(notes))
        else:
            self.record("login-rotates-id", OK, "; ".join(notes))

    def check_pre_login_replay(
        self, names: list[str], planted: dict[str, str], before: dict[str, str], judge: Judge
    ) -> None:
        held = [name for name in names if name in before]
        if not held:
            self.record(
                "pre-login-id-dead",
                NA,
                f"no session cookie existed before login (the client held {_cookies(before)}): "
                "nothing to replay",
            )
            return
        replay = self.probe(before)
        attacker = all(planted.get(name) == before[name] for name in held)
        whose = "the attacker's planted " if attacker else "the victim's pre-login "
        said = (
            f"GET {self.plan.probe} with {whose}{_cookies(before, held)} -> {self.show(replay)}: "
            f"{judge.verdict(replay)}"
        )
        if judge.authenticated(replay):
            self.record(
                "pre-login-id-dead",
                FAIL,
                f"{said} ({self.show(judge.auth)}); anonymous gets {self.show(judge.anon)}",
            )
        else:
            self.record("pre-login-id-dead", OK, f"{said}; the victim's own is {self.show(judge.auth)}")

    def check_chosen_id(self, names: list[str], judge: Judge) -> None:
        chosen = dict(self.plan.planted) or {name: "fgcheck" + secrets.token_hex(16) for name in names}
        if not chosen:
            self.record("chosen-id-refused", NA, "no session cookie to plant")
            return
        self.redactor.add(*chosen.values())
        victim = Client(dict(chosen))
        _, hidden = self.visit(victim)
        kept_to_login = {n: v for n, v in chosen.items() if victim.jar.get(n) == v}
        login = self.login(victim, hidden)
        planted = _cookies(chosen)
        if not self.plan.login.accepts(login.status):
            self.record(
                "chosen-id-refused",
                WARN,
                f"planted {planted}: the login then failed ({self.show(login)}), so nothing was adopted, "
                "but the app does not cope with an unknown ID",
            )
            return
        echoed = [c.name for c in login.set_cookies if chosen.get(c.name) == c.value and not c.deletes]
        replay = self.probe(chosen)
        stolen = judge.authenticated(replay)
        issued = [n for n in names if n in victim.jar and victim.jar[n] != chosen.get(n)]
        story = f"planted {planted}"
        if set(kept_to_login) != set(chosen):
            story += " (the app dropped or replaced " + ", ".join(sorted(set(chosen) - set(kept_to_login)))
            story += " before login)"
        if echoed:
            story += f"; the login set {', '.join(echoed)} to the planted value"
        elif issued:
            story += f"; the login issued {_cookies(victim.jar, issued)}"
        story += (
            f"; GET {self.plan.probe} with the planted value -> {self.show(replay)}: {judge.verdict(replay)}"
        )
        self.record("chosen-id-refused", FAIL if stolen or echoed else OK, story)

    def check_cookie_attributes(self, names: list[str]) -> None:
        plan = self.plan
        cookies = [self.attrs[name] for name in names if name in self.attrs]
        if not cookies:
            why = "no session cookie set by the app" if not names else "the app never set the session cookie"
            for check in ("cookie-httponly", "cookie-secure", "cookie-samesite", "cookie-host-prefix"):
                self.record(check, NA, why)
            return

        lacking = [c.name for c in cookies if "httponly" not in c.attrs]
        if lacking:
            self.record(
                "cookie-httponly", FAIL, f"{', '.join(lacking)}: no HttpOnly, scripts can read the ID"
            )
        else:
            self.record("cookie-httponly", OK, ", ".join(f"{c.name}: HttpOnly" for c in cookies))

        insecure = [c.name for c in cookies if "secure" not in c.attrs]
        if not insecure:
            self.record("cookie-secure", OK, ", ".join(f"{c.name}: Secure" for c in cookies))
        elif plan.https:
            self.record("cookie-secure", FAIL, f"{', '.join(insecure)}: no Secure, sent over plain http too")
        else:
            self.record(
                "cookie-secure",
                NA,
                f"{', '.join(insecure)}: no Secure, and this is plain http: run the check against the "
                "https URL the app is served at",
            )

        notes, worst = [], OK
        for c in cookies:
            value = c.attrs.get("samesite", "").capitalize()
            if value in ("Lax", "Strict"):
                notes.append(f"{c.name}: SameSite={value}")
            elif value == "None":
                notes.append(f"{c.name}: SameSite=None, sent on cross-site requests")
                worst = WARN
            else:
                notes.append(f"{c.name}: no SameSite (browsers differ: Chrome assumes Lax, others None)")
                worst = WARN
        self.record("cookie-samesite", worst, "; ".join(notes))

        if not plan.https:
            self.record("cookie-host-prefix", NA, "plain http: __Host- cookies need Secure and https")
            return
        notes, worst = [], OK
        for c in cookies:
            if c.name.startswith("__Host-"):
                bad = "secure" not in c.attrs or "domain" in c.attrs or c.attrs.get("path") != "/"
                if bad:
                    notes.append(f"{c.name}: __Host- without Secure, Path=/ and no Domain: browsers drop it")
                    worst = FAIL
                else:
                    notes.append(f"{c.name}: __Host-, Secure, Path=/, no Domain")
            else:
                notes.append(f"{c.name}: no __Host- prefix, so a sibling subdomain can plant or shadow it")
                worst = WARN if worst == OK else worst
        self.record("cookie-host-prefix", worst, "; ".join(notes))

    def check_tokens(self, judge: Judge, planted: str | None) -> None:
        plan = self.plan
        assert plan.token_field is not None
        field_name = ".".join(plan.token_field)
        if plan.basic:
            self.record(
                "token-chosen-refused", NA, "the login uses HTTP Basic, which takes the Authorization header"
            )
            self.record("token-pre-login-dead", NA, "the login uses HTTP Basic")
            return
        chosen = "fgcheck" + secrets.token_hex(16)
        self.redactor.add(chosen)
        self.check_one_token("token-chosen-refused", chosen, "a client-chosen token", judge, field_name)
        if planted is None:
            self.record(
                "token-pre-login-dead",
                NA,
                f"no {field_name} was issued before login" + (f" (GET {plan.start})" if plan.start else ""),
            )
        else:
            self.check_one_token(
                "token-pre-login-dead", planted, f"the pre-login {mask(planted)}", judge, field_name
            )

    def check_one_token(self, check: str, value: str, what: str, judge: Judge, field_name: str) -> None:
        client = Client()
        _, hidden = self.visit(client)
        login = self.login(client, hidden, bearer=value)
        if not self.plan.login.accepts(login.status):
            self.record(
                check, OK, f"login presenting {what} was refused ({self.show(login)}): nothing adopted"
            )
            return
        issued = find_token(login, self.plan.token_field or ())
        replay = self.probe({}, bearer=value)
        stolen = judge.authenticated(replay)
        story = f"login presenting {what} ({mask(value)})"
        if issued == value:
            story += f" returned the same {field_name}"
        elif issued:
            story += f" returned a new {field_name} {mask(issued)}"
        story += f"; GET {self.plan.probe} with it -> {self.show(replay)}: {judge.verdict(replay)}"
        self.record(check, FAIL if stolen or issued == value else OK, story)

    def check_logout(
        self,
        victim: Client,
        authenticated: Answer,
        judge: Judge | None,
        token: str | None,
        token_judge: Judge | None,
    ) -> None:
        plan = self.plan
        assert plan.logout is not None
        before = dict(victim.jar)
        form: list[tuple[str, str]] | None = None
        if plan.csrf:  # the logout form's token: on the authenticated page, or on the logout page
            form = self.csrf_fields(authenticated, plan.logout.path)
            if form is None and plan.logout.method != "GET":
                form = self.csrf_fields(self.send("GET", plan.logout.path, victim), plan.logout.path)
        bye = self.send(
            plan.logout.method,
            plan.logout.path,
            victim,
            form=form,
            bearer=token if token_judge is not None else None,
            referer=plan.probe,
        )
        self.context["logout"] = f"{plan.logout} -> {self.show(bye)}"
        if not plan.logout.accepts(bye.status):
            raise CheckError(
                f"logout failed: {plan.logout} answered {self.show(bye)}, "
                f"expected {plan.logout.expectation()}"
            )
        ends: list[str] = []
        dead: list[str] = []
        ended = stayed_dead = True
        if judge is not None:
            names = self.context.get("session_cookies") or list(before)
            after = self.probe(victim)
            ended = not judge.authenticated(after)
            held = _cookies(victim.jar, names) if any(n in victim.jar for n in names) else "no session cookie"
            said = f"{self.show(after)}: {judge.verdict(after)}"
            ends.append(f"the client then holds {held}; GET {plan.probe} -> {said}")
            replay = self.probe(before)
            stayed_dead = not judge.authenticated(replay)
            dead.append(
                f"GET {plan.probe} with the pre-logout {_cookies(before, names)} -> {self.show(replay)}: "
                f"{judge.verdict(replay)}"
            )
        if token_judge is not None and token is not None:
            replay = self.probe({}, bearer=token)
            alive = token_judge.authenticated(replay)
            stayed_dead = stayed_dead and not alive
            ended = ended and not alive
            dead.append(f"GET {plan.probe} with the login's token {mask(token)} -> {self.show(replay)}")
        self.record("logout-ends-session", OK if ended else FAIL, "; ".join(ends or dead))
        self.record("logout-id-dead", OK if stayed_dead else FAIL, "; ".join(dead))


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    target: str
    results: list[Result]
    context: dict[str, Any]
    error: str | None
    requests: int

    @property
    def findings(self) -> list[Result]:
        return [r for r in self.results if r.result == FAIL]

    @property
    def exit_status(self) -> int:
        if self.error:
            return EXIT_ERROR
        return EXIT_FINDINGS if self.findings else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        outcome = {EXIT_OK: "no findings", EXIT_FINDINGS: "findings", EXIT_ERROR: "error"}[self.exit_status]
        return {
            "tool": "fixguard check",
            "test": "OWASP WSTG-SESS-03 session fixation",
            "target": self.target,
            "outcome": outcome,
            "exit_status": self.exit_status,
            "error": self.error,
            "findings": len(self.findings),
            "context": self.context,
            "checks": [
                {"id": r.id, "title": r.title, "result": r.result, "evidence": r.evidence}
                for r in self.results
            ],
            "requests": self.requests,
        }

    def text(self, width: int = 110) -> str:
        lines = [f"fixguard check {self.target}  (OWASP WSTG-SESS-03, session fixation)"]
        labels = (
            ("login", "login"),
            ("authenticated_probe", "probe, logged in"),
            ("anonymous_probe", "probe, anonymous"),
            ("token_probe", "probe, with token"),
            ("logout", "logout"),
        )
        for key, label in labels:
            if key in self.context:
                lines.append(f"  {label + ':':<19} {self.context[key]}")
        if "session_cookies" in self.context:
            names = ", ".join(self.context["session_cookies"]) or "none"
            lines.append(f"  {'session cookies:':<19} {names} (the probe needs them after login)")
        if self.results:
            lines.append("")
            head = f"  {'RESULT':<6}  {'CHECK':<42}  "
            lines.append(head + "EVIDENCE")
            indent = " " * len(head)
            for r in self.results:
                first = f"  {r.result.upper():<6}  {r.title:<42}  "
                wrapped = textwrap.wrap(r.evidence, max(40, width - len(first))) or [""]
                lines.append(first + wrapped[0])
                lines.extend(indent + more for more in wrapped[1:])
        lines.append("")
        warnings = sum(r.result == WARN for r in self.results)
        tail = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
        if self.error:
            lines.extend(textwrap.wrap(f"Could not run: {self.error}", width, subsequent_indent="  "))
            lines.append("Exit status 2.")
        elif self.findings:
            count = len(self.findings)
            lines.append(f"{count} finding{'s' * (count != 1)}{tail}. Exit status 1.")
        else:
            lines.append(f"No finding{tail}. Exit status 0.")
        return "\n".join(lines)


def audit(plan: Plan) -> Report:
    """Run every check against ``plan.url``; never raises for the target's behaviour."""
    http = Http(plan)
    audit_ = Audit(plan, http)
    error = None
    try:
        audit_.run()
    except CheckError as exc:
        error = str(exc)
    finally:
        http.close()
    results = [audit_.results[check] for check in CHECKS if check in audit_.results]
    redact = audit_.redactor.clean
    for r in results:
        r.evidence = redact(r.evidence)
    context = json.loads(redact(json.dumps(audit_.context)))
    return Report(plan.url, results, context, redact(error) if error else None, http.sent)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fixguard check``."""
    parser.description = (
        "Play the OWASP session-fixation test (WSTG-SESS-03) against a running app, with or without "
        "fixguard: plant a session ID, log in, replay it. Exit 0: no finding; 1: findings; 2: could not run."
    )
    parser.epilog = (
        'Example: fixguard check http://127.0.0.1:8000 --login "POST /login" --form username=alice '
        "--form password=secret --probe /profile --logout 'POST /logout'"
    )
    parser.add_argument("url", metavar="URL", help="the app's base URL, http(s)://host[:port][/prefix]")
    parser.add_argument(
        "--login",
        required=True,
        metavar="REQUEST",
        help='the login request, e.g. "POST /login"; add the success status when a failed login also '
        'answers 200: "POST /admin/login/ 302"',
    )
    parser.add_argument(
        "--probe", required=True, metavar="PATH", help="a page only a logged-in user gets, e.g. /profile"
    )
    parser.add_argument(
        "--form", action="append", default=[], metavar="NAME=VALUE", help="a login form field (repeat)"
    )
    parser.add_argument("--json", metavar="BODY", help="the login body as JSON instead of a form")
    parser.add_argument("--basic", metavar="USER:PASS", help="log in with HTTP Basic credentials")
    parser.add_argument(
        "--csrf",
        metavar="FIELD",
        help="GET the login page first and send its hidden FIELD with the cookies it set "
        "(Django: csrfmiddlewaretoken, Flask-WTF: csrf_token)",
    )
    parser.add_argument(
        "--login-page", metavar="PATH", help="where the login form is (default: the login path)"
    )
    parser.add_argument(
        "--start", default="/", metavar="PATH", help="the first page a visitor opens (default /; '' for none)"
    )
    parser.add_argument("--logout", metavar="REQUEST", help='the logout request, "POST /logout"')
    parser.add_argument(
        "--cookie",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="plant this value before login (repeat; default: a random value for each session cookie)",
    )
    parser.add_argument(
        "--token-field",
        metavar="FIELD",
        help="the login answer's JSON field holding a bearer token (dotted for nested: data.token)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format (default text)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``fixguard check`` for parsed arguments; print the report; return the exit status."""
    out = out or sys.stdout
    output = getattr(args, "format", "text")
    try:
        plan = Plan.from_args(args)
        report = audit(plan)
    except CheckError as exc:
        report = Report(getattr(args, "url", ""), [], {}, str(exc), 0)
    if output == "json":
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), file=out)
    else:
        print(report.text(), file=out)
    return report.exit_status


def main(argv: list[str] | None = None) -> int:
    """``fixguard check`` on its own (for tests and ``python -m fixguard.check``)."""
    parser = argparse.ArgumentParser(prog="fixguard check")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
