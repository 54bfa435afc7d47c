"""What the check reads inside a page: a form's hidden fields, a JSON answer's token.

A browser submitting a login form sends every hidden field of that form
(Django's ``next`` along with its CSRF token); :func:`hidden_fields` finds
them so the check can do the same. The parser is the standard library's,
fed at most what :class:`~.messages.Answer` kept of the body; a page it
cannot parse simply has no field.
"""

from __future__ import annotations

import html.parser

from .messages import Answer

_MAX_FORMS = 200
_MAX_FIELDS = 200


class _Forms(html.parser.HTMLParser):
    """Each form's action and hidden fields; ``<meta name=… content=…>`` tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str | None, list[tuple[str, str]]]] = [(None, [])]  # [0]: outside any form
        self.current = 0
        self.metas: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form" and len(self.forms) < _MAX_FORMS:
            self.forms.append((found.get("action", ""), []))
            self.current = len(self.forms) - 1
        elif tag == "input" and found.get("name") and found.get("type", "").lower() == "hidden":
            fields = self.forms[self.current][1]
            if len(fields) < _MAX_FIELDS:
                fields.append((found["name"], found.get("value", "")))
        elif tag == "meta" and found.get("name") and len(self.metas) < _MAX_FIELDS:
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
