"""One contract, every store: MemoryStore and RedisStore must behave alike.

Each test runs twice through the ``store`` fixture (conftest.py): on a fresh
MemoryStore and on a RedisStore against the tests' own redis-server. Values are
real records from :mod:`fixguard.record`, because the compare-and-set
operations read their guard. TTLs are short (at most 0.3 s) and checked by
sleeping past them, the way a client would notice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from webtest import TestApp

from fixguard import FixGuard
from fixguard.cookies import JarCookie
from fixguard.events import Event
from fixguard.record import LIVE, RETIRED, ROTATING, CorruptRecord, Record, decode, encode
from fixguard.stores.base import Store
from fixguard.stores.memory import MemoryStore

from .apps import fg_cookie

SECRET = "contract-suite-key-0123456789-abcdefghijklmnop"
THREADS = 20


def live(token: str = "", data: str = "a") -> str:
    now = time.time()
    return encode(Record(LIVE, now, now, token, jar={"session": JarCookie(data)}))


def tomb(token: str = "") -> str:
    now = time.time()
    return encode(Record(RETIRED, now, now, token, retired=now, reason="login"))


def guard(value: str) -> str:
    return decode(value).guard


def plant(store: Store, key: str, raw: bytes | str | dict[str, str]) -> None:
    """Write a value under ``key`` behind the store's back, bytes and all."""
    if isinstance(store, MemoryStore):
        if not isinstance(raw, str):
            pytest.skip("MemoryStore holds str only: nothing can put bytes or another type there")
        store.retire(key, raw, 60)
        return
    from fixguard.stores.redis import RedisStore

    assert isinstance(store, RedisStore)
    full = store.prefix + key
    store.client.delete(full)
    if isinstance(raw, dict):
        store.client.hset(full, mapping=raw)
    else:
        store.client.set(full, raw, ex=60)


def run_together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Start ``n`` threads at one barrier and collect what each returned."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors, errors
    return results


# -- get / create ------------------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("nope") is None


def test_create_is_set_if_absent(store: Store) -> None:
    first, second = live(data="first"), live(data="second")
    assert store.create("k", first, 60) is True
    assert store.get("k") == first
    assert store.create("k", second, 60) is False
    assert store.get("k") == first


def test_create_refuses_over_a_tombstone(store: Store) -> None:
    store.retire("k", tomb(), 60)
    assert store.create("k", live(), 60) is False
    assert decode(store.get("k") or "").state == RETIRED


def test_values_round_trip_exactly(store: Store) -> None:
    value = live(data='caf\u00e9 \u2603 \U0001f600 | ; = "quoted"')
    assert store.create("k", value, 60)
    assert store.get("k") == value


# -- replace -----------------------------------------------------------------------------


def test_replace_never_creates(store: Store) -> None:
    value = live()
    assert store.replace("k", guard(value), value, 60) is False
    assert store.replace("k", guard(value), value, None) is False
    assert store.get("k") is None


def test_replace_compares_the_whole_guard(store: Store) -> None:
    old = live(token="abc")
    new = live(token="abc", data="new")
    assert store.create("k", old, 60)
    for wrong in ("1L", "1Lab", "1Labcd", "1Rabc", "1Tabc", "", "1"):
        assert store.replace("k", wrong, new, None) is False, wrong
    assert store.get("k") == old
    assert store.replace("k", "1Labc", new, None) is True
    assert store.get("k") == new


def test_replace_on_a_tombstone_fails(store: Store) -> None:
    dead = tomb()
    store.retire("k", dead, 60)
    assert store.replace("k", "1L", live(), None) is False
    assert store.get("k") == dead


def test_replace_with_ttl_none_keeps_the_ttl_and_a_number_resets_it(store: Store) -> None:
    kept, reset = live(data="kept"), live(data="reset")
    assert store.create("keep", kept, 0.3)
    assert store.create("reset", reset, 0.2)
    time.sleep(0.15)
    assert store.replace("keep", guard(kept), live(data="kept2"), None)  # still ends at 0.3
    assert store.replace("reset", guard(reset), live(data="reset2"), 0.3)  # now ends at 0.45
    time.sleep(0.12)  # t = 0.27: the reset key has outlived its first TTL
    assert store.get("reset") is not None
    time.sleep(0.08)  # t = 0.35
    assert store.get("keep") is None
    assert store.get("reset") is not None
    time.sleep(0.15)  # t = 0.5
    assert store.get("reset") is None
    assert store.replace("reset", guard(reset), reset, None) is False
    assert store.get("reset") is None


# -- freeze ------------------------------------------------------------------------------


def test_freeze_missing_returns_none_and_creates_nothing(store: Store) -> None:
    assert store.freeze("k", "tok") is None
    assert store.get("k") is None


def test_freeze_turns_live_into_rotating_and_returns_the_value_before(store: Store) -> None:
    value = live(token="old")
    assert store.create("k", value, 60)
    assert store.freeze("k", "t0k") == value
    frozen = store.get("k")
    assert frozen == "1Rt0k" + value[len("1Lold") :]  # token swapped, the rest byte for byte
    record = decode(frozen)
    assert record.state == ROTATING and record.token == "t0k"
    assert record.jar == decode(value).jar


def test_freeze_leaves_rotating_and_retired_untouched(store: Store) -> None:
    value = live()
    assert store.create("k", value, 60)
    store.freeze("k", "first")
    frozen = store.get("k")
    assert store.freeze("k", "second") == frozen
    assert store.get("k") == frozen

    dead = tomb()
    store.retire("t", dead, 60)
    assert store.freeze("t", "tok") == dead
    assert store.get("t") == dead


def test_freeze_leaves_a_value_without_a_live_guard_untouched(store: Store) -> None:
    for raw in ("garbage", "1L", "|1L|", "2L|{}", "1" + "L" * 60 + "|{}"):
        plant(store, "k", raw)
        assert store.freeze("k", "tok") == raw
        assert store.get("k") == raw


def test_freeze_keeps_the_ttl(store: Store) -> None:
    assert store.create("k", live(), 0.2)
    time.sleep(0.1)
    assert store.freeze("k", "tok") is not None
    time.sleep(0.15)  # t = 0.25: a freeze that reset or dropped the TTL would keep it alive
    assert store.get("k") is None


def test_unfreeze_is_a_replace_against_the_frozen_guard(store: Store) -> None:
    value = live()
    assert store.create("k", value, 60)
    store.freeze("k", "tok")
    assert store.replace("k", guard(value), value, None) is False  # the reader before the freeze
    thawed = live(token="tok", data="thawed")
    assert store.replace("k", "1Rtok", thawed, None) is True
    assert store.get("k") == thawed
    assert store.replace("k", "1L", value, None) is False  # the token survives the unfreeze


# -- retire / delete ---------------------------------------------------------------------


def test_retire_is_unconditional(store: Store) -> None:
    dead = tomb()
    store.retire("missing", dead, 60)
    assert store.get("missing") == dead
    assert store.create("live", live(), 60)
    store.freeze("live", "tok")
    store.retire("live", dead, 60)
    assert store.get("live") == dead
    store.retire("live", tomb(token="x"), 60)
    assert decode(store.get("live") or "").token == "x"


def test_retire_and_create_ttls_expire(store: Store) -> None:
    store.retire("tomb", tomb(), 0.1)
    assert store.create("live", live(), 0.1)
    assert store.get("tomb") is not None and store.get("live") is not None
    time.sleep(0.15)
    assert store.get("tomb") is None
    assert store.get("live") is None
    assert store.replace("live", "1L", live(), None) is False
    assert store.freeze("live", "tok") is None
    assert store.create("live", live(), 60) is True  # the key is really gone


def test_a_tiny_ttl_still_expires(store: Store) -> None:
    assert store.create("k", live(), 0.0001)  # below a millisecond: rounds up, never "no TTL"
    time.sleep(0.02)
    assert store.get("k") is None


def test_delete(store: Store) -> None:
    assert store.create("k", live(), 60)
    store.delete("k")
    assert store.get("k") is None
    store.delete("k")  # deleting nothing is fine
    assert store.create("k", live(), 60) is True


def test_keys_are_independent(store: Store) -> None:
    a, b = live(data="a"), live(data="b")
    assert store.create("a", a, 60) and store.create("b", b, 60)
    store.freeze("a", "tok")
    store.delete("b")
    assert decode(store.get("a") or "").state == ROTATING
    assert store.get("b") is None


# -- sessions per subject (link / sessions / revoke) -------------------------------------


def authenticated(subject: str, created: float) -> str:
    return encode(Record(LIVE, created, created, "", created, subject, {"session": JarCookie("x")}))


def test_subject_index_lists_live_sessions_and_revokes_them(store: Store) -> None:
    now = time.time()
    assert store.create("s1", authenticated("alice", now - 2), 60)
    assert store.create("s2", authenticated("alice", now - 1), 60)
    assert store.create("s3", authenticated("bob", now), 60)
    for key, subject in (("s1", "alice"), ("s2", "alice"), ("s3", "bob"), ("gone", "alice")):
        store.link(subject, key, 60)
    listed = store.sessions("alice")
    assert [s.fingerprint for s in listed] == ["s1", "s2"]  # oldest first; "gone" pruned
    assert all(s.subject == "alice" and s.authenticated for s in listed)

    store.retire("s1", tomb(), 60)
    assert [s.fingerprint for s in store.sessions("alice")] == ["s2"]
    assert store.revoke("alice") == 1
    assert decode(store.get("s2") or "").reason == "revoked"
    assert store.sessions("alice") == []
    assert store.revoke("alice") == 0
    assert decode(store.get("s3") or "").state == LIVE  # another subject is untouched


def test_subject_index_lives_as_long_as_its_longest_link(store: Store) -> None:
    assert store.create("a", authenticated("carol", time.time()), 60)
    store.link("carol", "a", 0.3)
    store.link("carol", "a", 0.1)  # a shorter link never shortens the index
    time.sleep(0.15)
    assert len(store.sessions("carol")) == 1
    time.sleep(0.2)  # t = 0.35: the index is gone, though the record is not
    assert store.sessions("carol") == []
    assert store.get("a") is not None


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_freezes_exactly_one_wins(store: Store) -> None:
    value = live()
    assert store.create("k", value, 60)
    seen = run_together(THREADS, lambda i: store.freeze("k", f"tok{i}"))
    winners = [i for i, v in enumerate(seen) if v == value]
    assert len(winners) == 1, seen
    frozen = store.get("k")
    assert frozen is not None and guard(frozen) == f"1Rtok{winners[0]}"
    assert all(v == frozen for i, v in enumerate(seen) if i != winners[0])


def test_concurrent_replaces_after_a_freeze_all_fail(store: Store) -> None:
    value = live()
    assert store.create("k", value, 60)
    assert store.freeze("k", "tok") == value
    frozen = store.get("k")
    results = run_together(THREADS, lambda i: store.replace("k", guard(value), live(data=f"w{i}"), None))
    assert results == [False] * THREADS
    assert store.get("k") == frozen


def test_concurrent_replaces_on_one_guard_exactly_one_wins(store: Store) -> None:
    value = live()
    assert store.create("k", value, 60)
    writes = [live(token=f"w{i}") for i in range(THREADS)]  # each write changes the guard
    results = run_together(THREADS, lambda i: store.replace("k", guard(value), writes[i], 60))
    assert results.count(True) == 1
    assert store.get("k") == writes[results.index(True)]


def test_concurrent_creates_exactly_one_wins(store: Store) -> None:
    writes = [live(data=f"c{i}") for i in range(THREADS)]
    results = run_together(THREADS, lambda i: store.create("k", writes[i], 60))
    assert results.count(True) == 1
    assert store.get("k") == writes[results.index(True)]


# -- corrupt and foreign values ----------------------------------------------------------

GARBAGE: dict[str, bytes | str | dict[str, str]] = {
    "not-utf8": b"\xff\xfe\x00\x80",
    "not-utf8-behind-a-live-guard": b'1L|{"c":1,"t":1,"j":{"session":"\xff"}}',
    "wrong-version": '2L|{"c":1,"t":1}',
    "unknown-state": '1X|{"c":1,"t":1}',
    "no-guard": "hello world",
    "empty": "",
    "not-json": "1L|{not json",
    "json-not-object": "1L|[1,2,3]",
    "missing-times": "1L|{}",
    "bad-jar": '1L|{"c":1,"t":1,"j":{"session":5}}',
    "bad-token": '1L!!|{"c":1,"t":1}',
    "oversized": '1L|{"c":1,"t":1,"j":{"session":"' + "x" * 70_000 + '"}}',
    "another-redis-type": {"field": "value"},
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_corrupt_values_read_as_strings_that_decode_rejects(
    store: Store, raw: bytes | str | dict[str, str]
) -> None:
    plant(store, "k", raw)
    for read in (lambda: store.get("k"), lambda: store.freeze("k", "tok")):
        value = read()
        assert isinstance(value, str)
        with pytest.raises(CorruptRecord):
            decode(value)
    assert store.replace("k", "1L", live(), None) is False
    assert store.create("k", live(), 60) is False  # something is there: never overwritten by create
    store.retire("k", tomb(), 60)  # but a tombstone replaces anything
    assert decode(store.get("k") or "").state == RETIRED


@pytest.mark.parametrize(
    "raw",
    [GARBAGE[k] for k in ("not-utf8", "not-utf8-behind-a-live-guard", "wrong-version", "another-redis-type")],
    ids=["not-utf8", "not-utf8-behind-a-live-guard", "wrong-version", "another-redis-type"],
)
def test_middleware_treats_a_corrupt_record_as_no_session(
    store: Store, raw: bytes | str | dict[str, str], wsgi_app: Any
) -> None:
    events: list[Event] = []
    guarded = FixGuard(
        wsgi_app, SECRET, store=store, app_cookies=("session",), secure=False, on_event=events.append
    )
    client = TestApp(guarded)
    assert client.get("/set?v=alice").text == "set alice"
    signed = client.cookies["fixguard"]
    assert client.get("/whoami").text == "alice"
    vid = guarded.ids.verify(signed)
    assert vid is not None

    plant(store, vid.key, raw)
    res = client.get("/whoami", status=200)
    assert res.text == "anonymous"
    assert "fixguard=;" in res.headers["Set-Cookie"]  # the dead cookie is cleared
    assert "fixguard" not in client.cookies
    assert [e.kind for e in events][-1] == "corrupt_record"

    # a login on that ID (the freeze path) is no session either, and rotates to a fresh ID
    plant(store, vid.key, raw)
    res = TestApp(guarded).post("/login", headers={"Cookie": f"fixguard={signed}"}, status=200)
    assert res.text == "welcome"
    assert [e.kind for e in events][-2:] == ["corrupt_record", "rotation"]
    fresh = fg_cookie(res)
    assert fresh not in (None, "", signed)
    assert TestApp(guarded).get("/whoami", headers={"Cookie": f"fixguard={fresh}"}).text == "user"
    assert decode(store.get(vid.key) or "").state == RETIRED  # the old key is a tombstone now


