"""A real browser for ``fixguard demo --browser`` and the browser tests: headless Chromium over loopback TLS.

Nothing here is needed to use fixguard. It drives Debian's ``chromium`` over
its DevTools pipe (no driver, no download) and makes a throwaway certificate
the browser is told to trust by its key's pin.
"""

from .certificate import LoopbackCertificate, make_certificate
from .devtools import CANDIDATES, INSTALL_HINT, BrowserError, Chromium, Profile, find_chromium
from .page import Tab

__all__ = [
    "CANDIDATES",
    "INSTALL_HINT",
    "BrowserError",
    "Chromium",
    "LoopbackCertificate",
    "Profile",
    "Tab",
    "find_chromium",
    "make_certificate",
]
