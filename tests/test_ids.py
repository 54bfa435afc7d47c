"""ID signing: itsdangerous' format, constant-time verify, fallback keys, store keys."""

from __future__ import annotations

import hashlib

from itsdangerous import Signer

from fixguard.ids import IDAuthority, _derive

KEY, OLD = b"k" * 16 + b"0123456789abcdef", b"o" * 16 + b"fedcba9876543210"


def test_mint_verify_round_trip_and_store_key() -> None:
    ids = IDAuthority(KEY)
    vid, signed = ids.mint()
    again = ids.verify(signed)
    assert again == vid
    assert vid.sid not in vid.key and len(vid.key) == 32
    # the format is itsdangerous' own: its Signer verifies what we mint
    Signer(_derive(KEY, b"sign"), key_derivation="none", digest_method=hashlib.sha256).unsign(signed)


def test_tampered_or_non_canonical_signatures_fail() -> None:
    ids = IDAuthority(KEY)
    _, signed = ids.mint()
    sid, sig = signed.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = {sid + "." + sig[:-1] + c for c in last} - {signed}
    assert all(ids.verify(v) is None for v in variants)  # no base64 malleability
    assert ids.verify(signed + "=") is None and ids.verify(signed[:-1]) is None
    assert ids.verify("é" * len(signed)) is None


def test_fallback_keys_verify_with_the_key_that_signed() -> None:
    old = IDAuthority(OLD)
    vid, signed = old.mint()
    rotated = IDAuthority(KEY, (OLD,))
    assert rotated.verify(signed) == vid  # same store key: the session is found
    assert IDAuthority(KEY).verify(signed) is None
    _, fresh = rotated.mint()
    assert old.verify(fresh) is None  # only the current key signs


def test_successor_is_deterministic_and_server_keyed() -> None:
    ids = IDAuthority(KEY)
    vid, _ = ids.mint()
    a, b = ids.successor(vid.sid), ids.successor(vid.sid)
    assert a == b and a[0].sid != vid.sid
    assert ids.verify(a[1]) == a[0]
    assert IDAuthority(OLD).successor(vid.sid)[0].sid != a[0].sid


def test_verified_values_are_remembered_boundedly_and_only_when_valid() -> None:
    import fixguard.ids as ids_module

    ids = IDAuthority(KEY)
    _, signed = ids.mint()
    forged = signed[:-1] + ("A" if signed[-1] != "A" else "B")
    assert ids.verify(forged) is None
    assert forged not in ids._verified  # hostile input never enters the memo
    first = ids.verify(signed)
    assert ids._verified[signed] == first and ids.verify(signed) == first
    for _ in range(ids_module._MEMO_SIZE + 5):
        ids.verify(ids.mint()[1])
    assert len(ids._verified) <= ids_module._MEMO_SIZE
