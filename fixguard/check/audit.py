"""One run of the check: the clients it plays, the requests they send, the order of the checks.

:class:`Audit` holds what every check needs (the plan, the transport, the
secrets seen so far, the cookie attributes the app set) and plays the common
part: the anonymous probe, the attacker's visit, the victim's login, the
references the :class:`~.judge.Judge` needs. Each family of checks lives in a
module of its own and is called from :meth:`Audit.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import attributes, logout, relogin, rotation, tokens
from .display import Redactor, excerpt, mask_runs
from .judge import Judge
from .messages import Answer, Client, Request, SetCookie, build_request
from .pages import find_token, hidden_fields
from .plan import Plan
from .report import NA, CheckError, Result
from .transport import Transport

MAX_DROP_TEST = 16  # cookies tried one by one to find the session cookies
MAX_REQUESTS = 64  # a run needs about 50 at most; past this something is wrong, so stop


class Audit:
    """One run of the check; ``results`` and ``context`` fill in as it goes."""

    def __init__(self, plan: Plan, transport: Transport, user_agent: str) -> None:
        self.plan = plan
        self.transport = transport
        self.user_agent = user_agent
        self.redactor = Redactor()
        self.results: dict[str, Result] = {}
        self.context: dict[str, Any] = {}
        self.attrs: dict[str, SetCookie] = {}  # the last Set-Cookie that set each name
        self.redactor.add(*plan.secrets)
        self.redactor.add(*plan.planted.values())

    # -- helpers

    def show(self, answer: Answer) -> str:
        """:func:`~.display.excerpt`, with every secret seen so far masked."""
        return excerpt(answer, lambda text: mask_runs(self.redactor.clean(text)))

    def record(self, check: str, result: str, evidence: str) -> None:
        self.results[check] = Result(check, result, evidence)

    def send(self, method: str, path: str, client: Client | Mapping[str, str], **kwargs: Any) -> Answer:
        """One request with ``client``'s cookies (a :class:`Client` keeps what is set)."""
        if self.transport.sent >= MAX_REQUESTS:
            raise CheckError(f"stopped after {MAX_REQUESTS} requests, more than any run needs")
        jar = client.jar if isinstance(client, Client) else client
        request: Request = build_request(
            method,
            path,
            user_agent=self.user_agent,
            origin=self.plan.origin,
            prefix=self.plan.prefix,
            cookies=dict(jar),
            extra_headers=self.plan.headers,
            **kwargs,
        )
        answer = self.transport.send(request)
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

    def visit(
        self, client: Client, *, required: bool = True
    ) -> tuple[list[Answer], list[tuple[str, str]] | None]:
        """A first visit: the start page, then the login page for its CSRF token.

        Returns the answers and the hidden fields of the login form (with
        ``--csrf``): a browser sends them all, e.g. Django's ``next``. Without
        the field on the page, that is an error when ``required``, else None.
        """
        plan = self.plan
        answers = []
        if plan.start:
            answers.append(self.send("GET", plan.start, client))
        hidden: list[tuple[str, str]] | None = []
        if plan.csrf:
            page = self.send("GET", plan.login_page, client)
            answers.append(page)
            hidden = self.csrf_fields(page, plan.login.path)
            if hidden is None and required:
                raise CheckError(
                    f"--csrf {plan.csrf}: no such hidden field in GET {plan.login_page} "
                    f"({self.show(page)}); name the form's field, or give --login-page"
                )
        return answers, hidden

    def login(
        self,
        client: Client,
        hidden: list[tuple[str, str]],
        bearer: str | None = None,
        *,
        attacker: bool = False,
    ) -> Answer:
        """The login request, with the victim's credentials (or the attacker's own account's)."""
        plan = self.plan
        form: list[tuple[str, str]] | None = None
        json_body: Any = None
        if plan.json_body is not None:
            json_body = plan.attacker_json() if attacker else plan.json_body
            token = dict(hidden).get(plan.csrf or "")
            if plan.csrf and token is not None:
                json_body = {**json_body, plan.csrf: token}
        elif plan.form or hidden or (attacker and plan.attacker_form):
            fields = plan.attacker_login_form() if attacker else plan.form
            given = {name for name, _ in fields}
            form = [(name, value) for name, value in hidden if name not in given] + list(fields)
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
        login = self.login(victim, hidden or [])
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
            rotation.check_rotation(self, session_names, planted_jar, before_login, after_login)
            rotation.check_pre_login_replay(self, session_names, planted_jar, before_login, cookie_judge)
            rotation.check_chosen_id(self, session_names, cookie_judge)
        else:
            why = f"the login sets no cookie that GET {plan.probe} needs (the session is the bearer token)"
            for check in ("login-rotates-id", "pre-login-id-dead", "chosen-id-refused"):
                self.record(check, NA, why)
            self.record("login-rotates-authenticated", NA, why)
        attributes.check_cookie_attributes(self, session_names)

        if token_judge is not None and token is not None:
            tokens.check_tokens(self, token_judge, planted_token)
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
            logout.check_logout(
                self,
                victim,
                authenticated,
                cookie_judge if cookie_judge.distinct else None,
                token,
                token_judge,
            )
        # Last: the attacker's own login must not disturb the victim's session the checks above use.
        if cookie_judge.distinct:
            relogin.check_authenticated_login(self, session_names, cookie_judge)

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
