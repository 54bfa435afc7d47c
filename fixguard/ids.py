"""Session IDs: mint, sign, verify, and hash for storage.

An ID is 256 random bits from :mod:`secrets`. The client holds ``<id>.<sig>``
where the signature is an HMAC made by :mod:`itsdangerous` with a key derived
from ``secret_key``; older keys (``fallback_keys``) still verify, only the
current one signs. The store never sees an ID: a record is kept under the
first 192 bits of the ID's signature — itself a keyed hash of the ID — so a
dump of the store yields nothing a client could present, and a request pays
one HMAC, not two.

Key derivation happens once, here, at start-up (itsdangerous would otherwise
derive its key on every call): each secret gives a signing key, a renewal key
and a hashing key, separated by label.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from binascii import b2a_base64

from itsdangerous import Signer

ID_BYTES = 32  # 256 bits
_ID_LEN = len(secrets.token_urlsafe(ID_BYTES))  # 43
_SIG_LEN = 43  # HMAC-SHA256, base64url without padding
_SIGNED_LEN = _ID_LEN + 1 + _SIG_LEN
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 to base64url, in C
_MEMO_SIZE = 8192  # verified cookie values remembered (a few MB at most)
_KEY_LEN = 32  # the store key: the signature's first 24 bytes (192 bits), base64url


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, b"fixguard/v1/" + label, hashlib.sha256).digest()


class VerifiedID:
    """An ID whose signature checked out, with the store key it lives under.

    Opaque to error reporters, which record the locals of the frames an app
    exception passes through: slotted (no ``vars()``), not a tuple (nothing
    to iterate), and its ``repr()`` shows only the fingerprint.
    """

    __slots__ = ("key", "sid")

    def __init__(self, sid: str, key: str) -> None:
        self.sid = sid
        self.key = key  # keyed hash: the store key, safe to log in short form

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible label for logs and events."""
        return self.key[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifiedID) and self.sid == other.sid and self.key == other.key

    def __hash__(self) -> int:
        return hash((self.sid, self.key))

    def __repr__(self) -> str:
        return f"VerifiedID(fingerprint={self.fingerprint!r})"


class _Keyring:
    """One secret's derived keys."""

    __slots__ = ("hash_key", "renew_key", "sign_key", "signer")

    def __init__(self, secret: bytes) -> None:
        self.sign_key = _derive(secret, b"sign")
        self.signer = Signer(self.sign_key, key_derivation="none", digest_method=hashlib.sha256)
        self.hash_key = _derive(secret, b"store")
        self.renew_key = _derive(secret, b"renew")


class IDAuthority:
    """Mints and signs IDs with the current key; verifies with any known key.

    Slotted, so an error reporter that walks ``vars()`` of what a frame holds
    does not find the memo of verified cookie values (every recent session's).
    """

    __slots__ = ("_all", "_current", "_verified")

    def __init__(self, secret_key: bytes, fallback_keys: tuple[bytes, ...] = ()) -> None:
        self._current = _Keyring(secret_key)
        self._all = (self._current, *(_Keyring(k) for k in fallback_keys))
        self._verified: dict[str, VerifiedID] = {}

    def mint(self) -> tuple[VerifiedID, str]:
        """A fresh ID and the signed value to send to the client."""
        return self._signed(secrets.token_urlsafe(ID_BYTES))

    def _signed(self, sid: str) -> tuple[VerifiedID, str]:
        signed = self._current.signer.sign(sid).decode("ascii")
        return VerifiedID(sid, signed[_ID_LEN + 1 : _ID_LEN + 1 + _KEY_LEN]), signed

    def verify(self, value: str) -> VerifiedID | None:
        """The ID inside a client's cookie value, or None if it is not one we signed.

        The signature is itsdangerous' format (HMAC-SHA256, base64url, no
        padding), recomputed with the one-shot ``hmac.digest`` and compared
        with ``hmac.compare_digest`` in constant time. Cheap shape checks come
        first, so hostile input costs no HMAC at all.

        Values that verified are remembered (bounded), so a session's every
        later request skips the HMAC: a signature that checked out once always
        will under the same keys. Only our own signed values ever enter the
        memo, so hostile input cannot fill it; a miss costs one dict lookup,
        whose string hash is keyed per process, so timing reveals nothing of
        the values held.
        """
        known = self._verified.get(value)
        if known is not None:
            return known
        if len(value) != _SIGNED_LEN or value[_ID_LEN] != ".":
            return None
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            return None
        sid, sig = raw[:_ID_LEN], raw[_ID_LEN + 1 :]
        for ring in self._all:
            expected = b2a_base64(hmac.digest(ring.sign_key, sid, "sha256"), newline=False)
            if hmac.compare_digest(expected[:_SIG_LEN].translate(_URLSAFE), sig):
                vid = VerifiedID(value[:_ID_LEN], value[_ID_LEN + 1 : _ID_LEN + 1 + _KEY_LEN])
                if len(self._verified) >= _MEMO_SIZE:
                    self._verified.clear()
                self._verified[value] = vid
                return vid
        return None

    def successor(self, sid: str) -> tuple[VerifiedID, str]:
        """The ID that renews ``sid``: derived, not random, so every request agrees on it.

        Parallel requests that present an ID in its renewal grace window all
        compute the same successor with no coordination but the atomic state
        change of the old record. Only the server key can derive it.
        """
        digest = hmac.digest(self._current.renew_key, sid.encode("ascii"), "sha256")
        return self._signed(urlsafe_b64encode(digest).decode("ascii")[:_ID_LEN])

    def key_for(self, text: str) -> str:
        """A store key for something that is not a session ID (a burned foreign token)."""
        digest = hmac.digest(self._current.hash_key, text.encode("utf-8"), "sha256")
        return "h" + urlsafe_b64encode(digest[:24]).decode("ascii")
