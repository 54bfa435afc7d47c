"""Cache-Control for a response that sets or clears fixguard's cookie: no shared cache may keep it.

Such a response belongs to one client. A shared cache (a CDN, a corporate
proxy) that stored it would replay one user's session cookie to the next
user who asks for the same URL. The qualified ``no-cache="Set-Cookie"`` says
"do not reuse the Set-Cookie header", but several caches ignore qualified
directives and store the whole response. So the response is made
``private``, which every cache understands: the app's ``public`` and
``s-maxage`` (both only about shared caches) and any qualified ``private``
go, every other directive of the app stays (``max-age`` still lets the
browser's own cache work), and ``no-cache="Set-Cookie"`` is kept for private
caches. Several ``Cache-Control`` fields are merged into one, since a
recipient reads them as one list.
"""

from __future__ import annotations

Headers = list[tuple[str, str]]

NO_CACHE_SET_COOKIE = 'no-cache="Set-Cookie"'
_SHARED_ONLY = frozenset(("public", "s-maxage", "private"))  # "private" is put back bare, first


def keep_out_of_shared_caches(headers: Headers) -> Headers:
    """Make a response that carries fixguard's cookie ``private``; edits ``headers`` in place.

    ``Cache-Control: public, max-age=60`` becomes ``private, max-age=60,
    no-cache="Set-Cookie"``; a response without the header gets
    ``private, no-cache="Set-Cookie"``.
    """
    at = -1
    kept: list[str] = []
    i = 0
    while i < len(headers):
        name, value = headers[i]
        if name.lower() != "cache-control":
            i += 1
            continue
        kept.extend(d for d in directives(value) if _name(d) not in _SHARED_ONLY)
        if at < 0:
            at = i
            i += 1
        else:
            del headers[i]  # merged into the first Cache-Control field
    if not any(_name(d) == "no-cache" and "set-cookie" in d.lower() for d in kept):
        kept.append(NO_CACHE_SET_COOKIE)
    merged = ", ".join(["private", *kept])
    if at < 0:
        headers.append(("Cache-Control", merged))
    else:
        headers[at] = (headers[at][0], merged)
    return headers


def directives(value: str) -> list[str]:
    """The comma-separated directives of one Cache-Control value, commas inside quotes kept.

    ``no-cache="Set-Cookie, X-Token", max-age=5`` is two directives, not three.
    """
    found: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            found.append(value[start:i])
            start = i + 1
    found.append(value[start:])
    return [d.strip(" \t") for d in found if d.strip(" \t")]


def _name(directive: str) -> str:
    return directive.partition("=")[0].strip(" \t").lower()
