"""A throwaway TLS certificate for loopback, and the pin that makes Chromium accept it.

The certificate is self-signed, valid for a day, for ``localhost``,
``127.0.0.1``, ``::1`` and any extra names (host names mapped to loopback by
the browser's resolver rules). Chromium is not asked to trust it as a root:
it is started with the SHA-256 pin of the key's SubjectPublicKeyInfo
(``--ignore-certificate-errors-spki-list``), which accepts exactly this key
and nothing else. The private key is written with mode 0600 and never leaves
the folder it is made in.

Made with the ``cryptography`` package (``pip install 'fixguard[browser]'``):
it builds the certificate and computes the pin from the same key object, with
no OpenSSL binary or command-line flags that vary between versions.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "pip install 'fixguard[browser]' (it needs the cryptography package)"


@dataclass(frozen=True)
class LoopbackCertificate:
    """Where the certificate and key are, and the pin a browser needs to trust them."""

    cert: Path
    key: Path
    spki_pin: str  # base64 of the SHA-256 of the DER SubjectPublicKeyInfo


def make_certificate(folder: Path, names: Sequence[str] = ()) -> LoopbackCertificate:
    """A fresh key and certificate in ``folder`` (``cert.pem``, ``key.pem``) for loopback plus ``names``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fixguard loopback test")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in ("localhost", *names)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    secret = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(secret)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
    return LoopbackCertificate(cert_path, key_path, pin)
