"""What a run of the check found: one result per check, and the report printed from them.

The report is the single product of the auditor: the CLI prints it as text
or JSON and :func:`fixguard.testing.audit` returns it to an adopter's test.
Every string in it that came from the target has already been redacted and
escaped by the time it gets here; :meth:`Report.text` escapes once more, so
a report built by hand cannot put a control character on a terminal either.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from .display import printable

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

# Results of one check. A warning is reported but is not a finding.
OK, FAIL, WARN, NA = "pass", "fail", "warn", "n/a"

#: Every check, in report order: id -> title.
CHECKS = {
    "login-rotates-id": "session ID changes at login",
    "pre-login-id-dead": "pre-login ID gets no access after login",
    "chosen-id-refused": "client-chosen ID is not adopted",
    "login-rotates-authenticated": "session ID changes at a login from an authenticated session",
    "logout-ends-session": "session ends at logout",
    "logout-id-dead": "old ID stays dead after logout",
    "cookie-httponly": "session cookie: HttpOnly",
    "cookie-secure": "session cookie: Secure",
    "cookie-samesite": "session cookie: SameSite",
    "cookie-host-prefix": "session cookie: __Host- prefix",
    "token-chosen-refused": "client-chosen bearer token is not adopted",
    "token-pre-login-dead": "pre-login bearer token refused after login",
}

_TITLE_WIDTH = 42  # a longer title gets a line of its own, the evidence below it


class CheckError(Exception):
    """The check could not run; the message says why (exit status 2)."""


@dataclass
class Result:
    """One check's verdict (``pass``, ``fail``, ``warn``, ``n/a``) and the evidence for it."""

    id: str
    result: str
    evidence: str

    @property
    def title(self) -> str:
        return CHECKS[self.id]


@dataclass
class Report:
    """The results of one run, in :data:`CHECKS` order, with what the check saw on the way.

    ``error`` is set when the check could not run (exit status 2); ``requests``
    counts the requests sent to the target.
    """

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
        """The JSON report (``fixguard check --format json``)."""
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
        """The human report: what was seen, one line (wrapped) per check, then the outcome."""
        lines = [f"fixguard check {printable(self.target)}  (OWASP WSTG-SESS-03, session fixation)"]
        labels = (
            ("login", "login"),
            ("authenticated_probe", "probe, logged in"),
            ("anonymous_probe", "probe, anonymous"),
            ("token_probe", "probe, with token"),
            ("logout", "logout"),
        )
        for key, label in labels:
            if key in self.context:
                lines.append(f"  {label + ':':<19} {printable(str(self.context[key]))}")
        if "session_cookies" in self.context:
            names = ", ".join(printable(str(n)) for n in self.context["session_cookies"]) or "none"
            lines.append(f"  {'session cookies:':<19} {names} (the probe needs them after login)")
        if self.results:
            lines.append("")
            head = f"  {'RESULT':<6}  {'CHECK':<{_TITLE_WIDTH}}  "
            lines.append(head + "EVIDENCE")
            indent = " " * len(head)
            for r in self.results:
                first = f"  {r.result.upper():<6}  {r.title:<{_TITLE_WIDTH}}  "
                wrapped = textwrap.wrap(printable(r.evidence), max(40, width - len(indent))) or [""]
                if len(first) > len(indent):
                    lines.append(first.rstrip())
                    first = indent
                lines.append(first + wrapped[0])
                lines.extend(indent + more for more in wrapped[1:])
        lines.append("")
        warnings = sum(r.result == WARN for r in self.results)
        tail = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
        if self.error:
            said = f"Could not run: {printable(self.error)}"
            lines.extend(textwrap.wrap(said, width, subsequent_indent="  "))
            lines.append("Exit status 2.")
        elif self.findings:
            count = len(self.findings)
            lines.append(f"{count} finding{'s' * (count != 1)}{tail}. Exit status 1.")
        else:
            lines.append(f"No finding{tail}. Exit status 0.")
        return "\n".join(lines)
