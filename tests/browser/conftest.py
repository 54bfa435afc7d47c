"""Fixtures of the browser tests: the certificate, two Chromium processes, the servers, the other site.

Chromium is Debian's ``chromium`` package, driven over its DevTools pipe
(:mod:`fixguard.browser`); ``./scripts/test.sh`` installs it when missing. The
two browser processes (the attacker's and the victim's) and every server live
for the whole session; each test gets fresh profiles in them, so no cookie or
remembered credential crosses from one test to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixguard.browser import BrowserError, Chromium, LoopbackCertificate, find_chromium, make_certificate

from ..servers import Gunicorns
from .harness import APP_NAME, HOST_RULES, OTHER_SITE, OtherSite, Person, Servers


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificate:
    """The servers' throwaway certificate; the browsers trust its key's pin and nothing else."""
    return make_certificate(tmp_path_factory.mktemp("tls"), names=(APP_NAME, OTHER_SITE))


def _chromium(certificate: LoopbackCertificate, log: Path) -> Chromium:
    executable = find_chromium()
    if executable is None:
        pytest.fail(
            "Chromium is not on PATH: the browser tests need it. Install it (Debian: apt-get install "
            "chromium) or run ./scripts/test.sh, which does."
        )
    try:
        return Chromium(
            executable=executable, spki_pins=[certificate.spki_pin], host_rules=HOST_RULES, log=log
        )
    except BrowserError as exc:
        pytest.fail(f"Chromium would not start: {exc}\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def attacker_browser(
    certificate: LoopbackCertificate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chromium]:
    """The attacker's Chromium, for the whole session."""
    with _chromium(certificate, tmp_path_factory.mktemp("chromium") / "attacker.log") as browser:
        yield browser


@pytest.fixture(scope="session")
def victim_browser(
    certificate: LoopbackCertificate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chromium]:
    """The victim's Chromium, for the whole session."""
    with _chromium(certificate, tmp_path_factory.mktemp("chromium") / "victim.log") as browser:
        yield browser


@pytest.fixture
def attacker(attacker_browser: Chromium) -> Iterator[Person]:
    """The attacker, in a fresh profile of his browser."""
    person = Person(attacker_browser.profile())
    yield person
    person.close()


@pytest.fixture
def victim(victim_browser: Chromium) -> Iterator[Person]:
    """The victim, in a fresh profile of her browser."""
    person = Person(victim_browser.profile())
    yield person
    person.close()


@pytest.fixture(scope="session")
def servers(certificate: LoopbackCertificate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Every server of ``harness.CONFIGS``, started together, stopped at the end of the session."""
    workdir = tmp_path_factory.mktemp("browser-servers")
    with Gunicorns(workdir) as pool:
        yield Servers(pool, workdir, certificate)


@pytest.fixture(scope="session")
def other_site() -> Iterator[OtherSite]:
    """The other site (``evil.test``), served in this process."""
    site = OtherSite()
    yield site
    site.close()
