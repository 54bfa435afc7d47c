"""A revoke at any step of a renewal, an elevate or a write ends the session it moves to.

Deterministic: the guard under test talks to a store that runs
``revoke("alice")`` on the real store just before its N-th call, for every N
the request makes. Whatever the moment, afterwards no ID the client ever held
(the old one, or a new one the response handed out) reaches alice's session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from webtest import TestApp

from fixguard.stores.base import Store

from .apps import VulnerableApp, fg_cookie, guard

_OPS = frozenset(
    (
        "get", "create", "replace", "freeze", "retire", "delete", "handover", "link",
        "_index_members", "_index_ttl", "_index_remove",
    )
)  # fmt: skip


class RevokeAt:
    """Delegates to a store; runs ``action`` once, just before call number ``at``."""

    def __init__(self, inner: Store, at: int, action: Callable[[], object]) -> None:
        self.inner, self.at, self.action, self.calls = inner, at, action, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in _OPS:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.calls == self.at:
                self.action()
            self.calls += 1
            return attr(*args, **kwargs)

        return call


def ask(app: Any, method: str, path: str, cookie: str | None) -> Any:
    headers = {"Cookie": f"fixguard={cookie}"} if cookie else {}
    return TestApp(app).request(path, method=method, headers=headers, expect_errors=True)


def alice_reaches(app: Any, cookie: str | None) -> bool:
    return cookie is not None and ask(app, "GET", "/profile", cookie).text == "user=alice"


def play(store: Store, at: int, step: str) -> tuple[int, list[str], VulnerableApp]:
    """Log alice in, then run ``step`` through a store that revokes before call ``at``."""
    vuln = VulnerableApp()
    settings: dict[str, Any] = {"elevate": ("POST /elevate",), "renew_after": 0.05, "renew_grace": 5}
    plain = guard(vuln, store=store, **settings)
    cookie = fg_cookie(ask(plain, "GET", "/header-login", None))
    assert alice_reaches(plain, cookie)
    time.sleep(0.06)  # due for renewal
    revoked: list[int] = []
    racing = RevokeAt(store, at, lambda: revoked.append(store.revoke("alice")))
    raced = guard(vuln, store=racing, **settings)
    method, path = ("POST", "/elevate") if step == "elevate" else ("GET", "/profile")
    res = ask(raced, method, path, cookie)
    held = [cookie, fg_cookie(res)]
    if not revoked and at >= 0:  # the request made fewer calls: revoke after it
        store.revoke("alice")
    return racing.calls, [c for c in held if c], vuln


@pytest.mark.parametrize("step", ["renewal", "elevate"])
def test_a_revoke_at_any_step_ends_the_new_session(store: Store, step: str) -> None:
    calls, held, vuln = play(store, -1, step)  # no revoke: the step hands out a new ID
    assert calls >= 2 and len(held) == 2 and alice_reaches(guard(vuln, store=store), held[1])
    for at in range(calls + 1):
        _, held, vuln = play(store, at, step)
        plain = guard(vuln, store=store)
        for cookie in held:
            assert not alice_reaches(plain, cookie), (step, at)
        assert store.sessions("alice") == []


@pytest.mark.parametrize("step", ["renewal", "elevate", "write"])
def test_the_step_at_any_point_of_a_revoke_is_ended_by_it(store: Store, step: str) -> None:
    """The other way round: the renewal, elevate or write runs between two steps of the revoke."""

    def run(at: int) -> tuple[int, list[str], VulnerableApp]:
        vuln = VulnerableApp()
        settings: dict[str, Any] = {"elevate": ("POST /elevate",), "renew_after": 0.05, "renew_grace": 5}
        if step == "write":
            settings["app_cookies"] = ("session", "extra")
        plain = guard(vuln, store=store, **settings)
        cookie = fg_cookie(ask(plain, "GET", "/header-login", None))
        time.sleep(0.06)
        held = [cookie]

        def the_step() -> None:
            if step == "write":
                res = ask(guard(_writer, store=store, **settings), "GET", "/", cookie)
            elif step == "elevate":
                res = ask(plain, "POST", "/elevate", cookie)
            else:
                res = ask(plain, "GET", "/profile", cookie)
            held.append(fg_cookie(res))

        racing = RevokeAt(store, at, the_step)
        type(store).revoke(racing, "alice")  # type: ignore[arg-type]
        if len(held) == 1:
            the_step()  # revoke made fewer calls: the step comes after it
        return racing.calls, [c for c in held if c], vuln

    calls, _, _ = run(10_000)
    assert calls >= 2
    for at in range(calls + 1):
        _, held, vuln = run(at)
        plain = guard(vuln, store=store)
        assert len(held) >= 1
        for cookie in held:
            assert not alice_reaches(plain, cookie), (step, at)


def _writer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Set-Cookie", f"extra={time.monotonic_ns()}; Path=/")])
    return [b"written"]
