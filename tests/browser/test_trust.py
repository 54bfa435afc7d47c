"""The browsers trust the servers' throwaway certificate by its key's pin, and nothing else.

The pin (``--ignore-certificate-errors-spki-list``) is narrower than
``--ignore-certificate-errors``: a browser pinned to another key refuses the
same server, so the https in these tests is checked https, not switched off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixguard.browser import BrowserError, Chromium, LoopbackCertificate, make_certificate

from .harness import HOST_RULES, Person, Servers

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_pinned_key_is_trusted(servers: Servers, victim: Person, certificate: LoopbackCertificate) -> None:
    served = servers["signed-protected"]
    assert victim.open(served.url("/"))[0] == 200
    assert len(certificate.spki_pin) == 44 and (certificate.key.stat().st_mode & 0o777) == 0o600


def test_another_key_is_refused(servers: Servers, tmp_path: Path) -> None:
    served = servers["signed-protected"]
    stranger = make_certificate(tmp_path / "other")
    with Chromium(spki_pins=[stranger.spki_pin], host_rules=HOST_RULES) as browser:
        person = Person(browser.profile())
        with pytest.raises(BrowserError, match="ERR_CERT"):
            person.tab.navigate(served.url("/"))
