"""The session lifecycle, sans I/O: request facts and store answers in, decisions out.

No WSGI, ASGI or store client appears here (the way h11 keeps HTTP/1.1's
state machine free of sockets). :class:`~fixguard.core.exchange.Exchange`
holds one request's state; its steps are generators that yield
:mod:`~fixguard.core.ops` (store calls, a pause, the request body) for a
shell to perform: :mod:`fixguard.wsgi` synchronously, :mod:`fixguard.asgi`
with ``await``. :class:`~fixguard.core.guard.Guard` is the configuration both
shells share.
"""

from .exchange import Exchange
from .guard import Guard
from .ops import ReadBody, Sleep, Steps, StoreCall, drive
from .state import Request, RequestFacts

__all__ = ["Exchange", "Guard", "ReadBody", "Request", "RequestFacts", "Sleep", "Steps", "StoreCall", "drive"]
