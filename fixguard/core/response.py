"""The response phase: what the app's answer means for its session.

Reads the status, the app's Set-Cookie for its vaulted cookies, its signals
(rules that count, detected credentials, the ``Fixguard-Event`` and
``Fixguard-Subject`` headers, ``fixguard.signal()`` calls in the request's
context) and decides: rotate, log out, unfreeze, branch, renew, slide, copy,
create, or nothing. A request that ran long re-checks that no login froze its
session meanwhile (409 if one did). Store calls are yielded (see
:mod:`fixguard.core.ops`).
"""

from __future__ import annotations

import time

from ..caching import keep_out_of_shared_caches
from ..cookies import SetCookie, harden, parse_set_cookie
from ..record import LIVE, RENEWED, SNAPSHOT, CorruptRecord, Record, decode, guard_of
from ..signals import ENVIRON_SIGNALS, ENVIRON_SUBJECT, location_path, normalize_path, parse_event_header
from ..signals import ROTATING as ROTATING_SIGNALS
from ..stores.base import MAX_HOPS
from ..tokens import is_json
from .ops import Steps, StoreCall
from .state import Headers, Pending, cap_subject
from .writes import Writes, apply_updates

_WATCHED = frozenset(("set-cookie", "fixguard-event", "fixguard-subject"))
_UNVAULTED_HINT = (
    "the app set {0!r}, which looks like a session cookie, but it is not in app_cookies: it went to "
    "the client unprotected. Add it to app_cookies (FIXGUARD_APP_COOKIES)"
)
#: Session cookie names of common frameworks and servers, lower case.
_SESSION_NAMES = frozenset(
    (
        "phpsessid", "jsessionid", "connect.sid", "sessionid", "asp.net_sessionid", "_session_id",
        "rack.session", "laravel_session", "beaker.session.id", "cfid", "cftoken", "sid",
        "aspsessionid", "express.sid", "koa.sess", "_csrf_session",
    )
)  # fmt: skip


def looks_like_session_cookie(name: str) -> bool:
    """``sid``, anything containing ``sess``, or a well-known session cookie name."""
    lowered = name.lower()
    return "sess" in lowered or lowered in _SESSION_NAMES or lowered.endswith(("_sid", ".sid", "-sid"))


class ResponsePhase(Writes):
    """Decide what a response means and write it."""

    def scan(self, headers: Headers) -> tuple[Headers, list[SetCookie], list[str], str | None]:
        """Split the app's headers into what may leave, jar updates, signals and subject."""
        g = self.g
        for name, _ in headers:
            if name.lower() in _WATCHED:
                break
        else:
            return headers, [], [], None  # most responses: nothing of ours, nothing to copy
        out: Headers = []
        updates: list[SetCookie] = []
        signals: list[str] = []
        subject: str | None = None
        harden_on = g.settings.harden_cookies
        for name, value in headers:
            lname = name.lower()
            if lname == "set-cookie":
                cname = value.partition("=")[0].strip(" \t")
                if cname in g.app_cookie_names:
                    update = parse_set_cookie(value, self.full_path())
                    if update is not None:
                        updates.append(update)
                    continue
                if cname == g.settings.cookie_name:
                    continue  # only fixguard sets fixguard's cookie
                if cname not in g.warned_cookies and looks_like_session_cookie(cname):
                    g.warned_cookies.add(cname)
                    self.emit("unvaulted_cookie", cookie=cname, hint=_UNVAULTED_HINT.format(cname))
                if harden_on:
                    s = g.settings
                    value = harden(value, s.secure, s.samesite, cname not in g.script_cookie_names)
            elif lname == "fixguard-event":
                signals.extend(parse_event_header(value))
                continue
            elif lname == "fixguard-subject":
                subject = value.strip()
                continue
            out.append((name, value))
        return out, updates, signals, subject

    def settled(self, headers: Headers) -> Headers | None:
        """The headers that leave when the response decides nothing, known without a step.

        The two common requests: no session at all, and a read-only session
        answered within ``settle_time`` of its read (no login can have frozen it
        unseen) that is due neither a slide nor a renewal. None: drive :meth:`respond`.
        """
        if self.rules or self.detected or ENVIRON_SIGNALS in self.request.context:
            return None
        for name, _ in headers:
            if name.lower() in _WATCHED:
                return None
        if self.vid is None:
            return None if self.clear_cookie else headers
        record = self.record
        if record is None or self.reissue is not None or self.freeze_token or self.clear_cookie:
            return None
        if time.monotonic() - self.read_at > self.g.settings.settle_time:
            return None  # respond() re-checks the record first
        return headers if self.read_only_done(record) else None

    def read_only_done(self, record: Record) -> bool:
        """A read-only request on ``record`` that writes nothing: no slide, no renewal due."""
        if self.from_snapshot:
            return True  # an older ID is never slid nor renewed: it only serves its window
        now = self.now  # when the record was read: close enough to decide a lazy slide
        return now - record.touched <= self.g.slide_after and not self.renewal_due(record, now)

    def respond(self, code: int, headers: Headers) -> Steps[Headers | None]:
        """Decide what the response means; None when it is held back for its tokens."""
        context = self.request.context
        out, updates, signals, subject = self.scan(headers)
        race_checked = False
        if not (updates or signals or self.rules or self.detected) and ENVIRON_SIGNALS not in context:
            # Nothing set, no signal: the two common requests decide almost nothing.
            record = self.record
            if self.vid is None and not self.clear_cookie:
                return out  # no session
            if record is not None and self.reissue is None and not (self.freeze_token or self.clear_cookie):
                # a read-only session: only the race, the slide and renewal matter
                if (yield from self.raced()):
                    self.replacement = self.conflict_response()
                    return out
                race_checked = True
                if self.read_only_done(record):
                    return out
        header_signals = bool(signals)
        called = list(context.get(ENVIRON_SIGNALS, ()))
        signals.extend(called)
        subject = context.get(ENVIRON_SUBJECT) or subject
        subject = cap_subject(subject)
        location = None
        if self.rules or self.detected:
            location = next((v for k, v in out if k.lower() == "location"), None)
        counted = [r.signal for r in self.rules if r.counts(code, location, self.path)]
        if self.detected and self.rotating and self.detected_success(code, location):
            counted.append("login")
            self.via = "credentials"
        if counted and not self.via:
            self.via = "rule"
        if not self.via:
            self.via = "call" if ROTATING_SIGNALS.intersection(called) else "header" if header_signals else ""
        signals.extend(counted)

        raced = not race_checked and self.record is not None and not self.freeze_token
        if raced and (yield from self.raced()):
            self.replacement = self.conflict_response()
            return out
        if self.g.token_paths and "logout" not in signals and ROTATING_SIGNALS.intersection(signals):
            content_type = next((v for k, v in out if k.lower() == "content-type"), None)
            if is_json(content_type) and self.method != "HEAD" and code not in (204, 304):
                self.pending = Pending(out, updates, signals, subject)
                return None
            if self.token_login and self.via == "credentials":
                signals = without_detected_login(signals)  # no tokens in the answer: not a login
            else:
                self.emit("token_body_skipped", reason="not JSON")
        return (yield from self.commit(out, updates, signals, subject))

    def detected_success(self, code: int, location: str | None) -> bool:
        """A detected login succeeded: below 400, except a redirect back to the form it posted."""
        if code >= 400:
            return False
        if 300 <= code < 400 and location:
            return location_path(location, self.path) != normalize_path(self.path)
        return True

    def commit(
        self,
        out: Headers,
        updates: list[SetCookie],
        signals: list[str],
        subject: str | None,
        app_tokens: list[str] | None = None,
    ) -> Steps[Headers]:
        """Rotate, retire, unfreeze, update or create the record; the headers that leave."""
        g = self.g
        now = time.time()
        if "logout" in signals:
            if self.frozen_elsewhere:
                return out
            yield from self.logout(now, updates)
        elif "login" in signals or "elevate" in signals:
            kind = "login" if "login" in signals else "elevate"
            yield from self.rotate(kind, now, updates, subject, app_tokens)
        elif self.frozen_elsewhere:
            return out  # inert: neither sets nor clears the cookie, stores nothing
        elif self.freeze_token:
            yield from self.failed_login(now, updates)
        elif self.record is not None:
            if self.from_snapshot:
                yield from self.branch(now, updates)
            elif self.renewal_due(self.record, now):
                yield from self.renew(now, updates)
            else:
                yield from self.update(now, updates)
        elif updates and not self.quiet:  # quiet: a late parallel request gets no new session
            jar = apply_updates({}, updates, now)
            if jar:
                yield from self.create(now, jar, authenticated=None, subject=None, created=now)
                self.emit("session_created", new=self.outcome_fingerprint)
        if self.reissue is not None and not self.outcome and self.record is not None:
            end = self.record.created + g.settings.absolute_timeout
            self.outcome.append(("Set-Cookie", g.writer.set(self.reissue.open(), end)))
        if self.clear_cookie and not self.outcome:
            self.outcome.append(("Set-Cookie", g.writer.clear))
        if self.outcome:
            # a copy: ``out`` may be the app's own list, and apps reuse header lists
            out = keep_out_of_shared_caches(list(out))
            out.extend(self.outcome)
            plain_http = self.request.scheme == "http"
            if plain_http and g.settings.secure and self.outcome_fingerprint:
                self.insecure_transport()
        return out

    def raced(self) -> Steps[bool]:
        """Did this request take long enough that a login may have frozen its session meanwhile?

        A head that a parallel write or renewal moved on (snapshot, renewed) is
        no race as long as the chain still leads to a live head.
        """
        if time.monotonic() - self.read_at <= self.g.settings.settle_time:
            return False
        current = yield StoreCall("get", (self.head_key,))
        if current is not None and guard_of(current) == self.read_guard:
            return False
        for _ in range(MAX_HOPS):
            try:
                record = decode(current) if current is not None else None
            except CorruptRecord:
                record = None
            if record is None or record.state not in (SNAPSHOT, RENEWED) or not record.next:
                break
            current = yield StoreCall("get", (record.next,))
            if current is not None and guard_of(current)[1:2] == LIVE:
                return False
        self.emit("race_blocked")
        return True


def without_detected_login(signals: list[str]) -> list[str]:
    """``signals`` less the ``login`` credential detection added (the last one: it goes in last)."""
    out = list(signals)
    for i in range(len(out) - 1, -1, -1):
        if out[i] == "login":
            del out[i]
            break
    return out
