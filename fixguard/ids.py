"""Session IDs: mint, sign, verify, and hash for storage.

An ID is 256 random bits from :mod:`secrets`. The client holds ``<id>.<sig>``
where the signature is an HMAC made by :mod:`itsdangerous` with a key derived
from ``secret_key``; older keys (``fallback_keys``) still verify, only the
current one signs. The store never sees an ID: records are kept under a keyed
hash of it, so a dump of the store yields nothing a client could present.

Key derivation happens once, here, at start-up (itsdangerous would otherwise
derive its key on every call): each secret gives one signing key and one
hashing key, separated by label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

ID_BYTES = 32  # 256 bits
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ID_LEN = len(secrets.token_urlsafe(ID_BYTES))
MAX_SIGNED_LEN = 128  # an honest cookie is ~87 characters; anything longer is not ours


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, b"fixguard/v1/" + label, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class VerifiedID:
    """An ID whose signature checked out, with the store key it lives under."""

    sid: str
    key: str  # keyed hash: the store key, safe to log in short form

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible label for logs and events."""
        return self.key[:12]


class _Keyring:
    """One secret's derived keys."""

    __slots__ = ("hash_key", "renew_key", "signer")

    def __init__(self, secret: bytes) -> None:
        self.signer = Signer(_derive(secret, b"sign"), key_derivation="none", digest_method=hashlib.sha256)
        self.hash_key = _derive(secret, b"store")
        self.renew_key = _derive(secret, b"renew")


class IDAuthority:
    """Mints and signs IDs with the current key; verifies with any known key."""

    def __init__(self, secret_key: bytes, fallback_keys: tuple[bytes, ...] = ()) -> None:
        self._current = _Keyring(secret_key)
        self._all = (self._current, *(_Keyring(k) for k in fallback_keys))

    def mint(self) -> tuple[VerifiedID, str]:
        """A fresh ID and the signed value to send to the client."""
        sid = secrets.token_urlsafe(ID_BYTES)
        signed = self._current.signer.sign(sid).decode("ascii")
        return VerifiedID(sid, self._hash(self._current, sid)), signed

    def verify(self, value: str) -> VerifiedID | None:
        """The ID inside a client's cookie value, or None if it is not one we signed.

        The HMAC comparison is constant-time (itsdangerous uses
        ``hmac.compare_digest``); cheap shape checks come first so hostile
        input costs no HMAC at all.
        """
        if len(value) > MAX_SIGNED_LEN:
            return None
        sid, dot, _ = value.partition(".")
        if not dot or len(sid) != _ID_LEN or not _ID_CHARS.issuperset(sid):
            return None
        raw = value.encode("ascii", "strict") if value.isascii() else None
        if raw is None:
            return None
        for ring in self._all:
            try:
                ring.signer.unsign(raw)
            except BadSignature:
                continue
            return VerifiedID(sid, self._hash(ring, sid))
        return None

    def successor(self, sid: str) -> tuple[VerifiedID, str]:
        """The ID that renews ``sid``: derived, not random, so every request agrees on it.

        Parallel requests that present an ID in its renewal grace window all
        compute the same successor with no coordination but the atomic state
        change of the old record. Only the server key can derive it.
        """
        digest = hmac.new(self._current.renew_key, sid.encode("ascii"), hashlib.sha256).digest()
        new = base64.urlsafe_b64encode(digest).decode("ascii")[:_ID_LEN]
        signed = self._current.signer.sign(new).decode("ascii")
        return VerifiedID(new, self._hash(self._current, new)), signed

    def key_for(self, sid: str) -> str:
        """The store key of an ID minted under the current secret."""
        return self._hash(self._current, sid)

    @staticmethod
    def _hash(ring: _Keyring, sid: str) -> str:
        digest = hmac.new(ring.hash_key, sid.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode("ascii")
