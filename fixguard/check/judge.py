"""Telling an authenticated answer from an anonymous one, for any app.

The check knows nothing of the app's pages. It keeps two references for the
probe page, the victim's own authenticated answer and an anonymous visitor's,
and judges every later answer by which it resembles: same status, same
redirect target, then how alike the bodies are. The user's name, when the
credentials show it and only the authenticated page has it, settles close
calls. Bodies are compared on their first :data:`_COMPARED` characters, so a
huge page costs bounded time.
"""

from __future__ import annotations

import difflib

from .messages import Answer

_COMPARED = 20_000  # characters of a body compared
_COMPARED_LINES = 2_000  # lines of a body compared, when comparing line by line


def _ratio(a: str, b: str) -> float:
    a, b = a[:_COMPARED], b[:_COMPARED]
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if len(a) <= 2000 and len(b) <= 2000:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    lines_a, lines_b = a.splitlines()[:_COMPARED_LINES], b.splitlines()[:_COMPARED_LINES]
    return difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False).ratio()


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
