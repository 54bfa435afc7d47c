"""What the core asks of the world: store calls, a pause, the request body.

The lifecycle in :mod:`fixguard.core` never calls a store, sleeps or reads a
socket. Each step that needs one of those is a generator that *yields* an
operation and is sent its result (or thrown the exception it raised); a
shell drives it. :func:`drive` is the synchronous driver the WSGI shell uses;
:func:`drive_async` drives the same generators with ``await`` for the ASGI
shell (an async store's coroutines are awaited; a MemoryStore, whose methods
are quick and lock-protected, is called directly). So one
implementation decides, and a store call is written exactly once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class StoreCall(NamedTuple):
    """``store.<name>(*args)``: one method of the :class:`~fixguard.stores.base.Store` protocol."""

    name: str
    args: tuple[Any, ...]


class Sleep(NamedTuple):
    """Wait ``seconds`` (the settle time of a login) without holding anything."""

    seconds: float


class ReadBody(NamedTuple):
    """The request body if it is at most ``limit`` bytes (put back for the app), else None."""

    limit: int


Op = StoreCall | Sleep | ReadBody
#: A step of the lifecycle: yields operations, is sent their results, returns ``T``.
Steps = Generator[Op, Any, T]


def drive(steps: Steps[T], store: Any, read_body: Callable[[int], bytes | None] | None = None) -> T:
    """Run ``steps`` to the end synchronously: each store call made on ``store``, in order.

    An exception a call raises (a :class:`~fixguard.stores.base.StoreError`)
    is thrown into the step that asked, which decides what it means.
    """
    try:
        op = next(steps)
        while True:
            try:
                if type(op) is StoreCall:
                    result: Any = getattr(store, op.name)(*op.args)
                elif type(op) is Sleep:
                    time.sleep(op.seconds)
                    result = None
                else:
                    assert type(op) is ReadBody
                    result = read_body(op.limit) if read_body is not None else None
            except Exception as exc:
                op = steps.throw(exc)
            else:
                op = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def drive_async(
    steps: Steps[T],
    store: Any,
    read_body: Callable[[int], Awaitable[bytes | None]] | None = None,
    awaits: bool = False,
) -> T:
    """Run ``steps`` to the end, awaiting each operation; never blocks the event loop.

    A store call that returns an awaitable (an async store; ``awaits`` says
    so up front) is awaited; a synchronous MemoryStore answers at once. The settle wait is ``asyncio.sleep``.
    """
    try:
        op = next(steps)
        while True:
            try:
                if type(op) is StoreCall:
                    result: Any = getattr(store, op.name)(*op.args)
                    if awaits or inspect.isawaitable(result):
                        result = await result
                elif type(op) is Sleep:
                    await asyncio.sleep(op.seconds)
                    result = None
                else:
                    assert type(op) is ReadBody
                    result = await read_body(op.limit) if read_body is not None else None
            except Exception as exc:
                op = steps.throw(exc)
            else:
                op = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
