"""``limit_concurrency``: past so many requests in flight, new ones get ``503``.

As uvicorn's ``--limit-concurrency``: a server that takes every request it is sent
falls behind all of them at once under overload; one that answers the excess at once
with ``503 Service Unavailable`` and ``Retry-After`` keeps serving the rest in time,
and tells clients and balancers to come back. A request is in flight from the call
of its handler until its response is ready.
"""

from __future__ import annotations

from asyncio import Future
from typing import Any

from .response import RESPONSE_TYPES, Response

__all__ = ["ConcurrencyLimit"]

BUSY = Response(
    b"Service Unavailable\n",
    503,
    headers=[("Retry-After", "1")],
    content_type="text/plain; charset=utf-8",
)


class ConcurrencyLimit:
    """The handler of a server with ``limit_concurrency``: counts what is in flight."""

    __slots__ = ("handler", "in_flight", "limit")

    def __init__(self, handler: Any, limit: int) -> None:
        self.handler = handler
        self.limit = limit
        self.in_flight = 0

    def __call__(self, request: Any) -> Any:
        if self.in_flight >= self.limit:
            return BUSY
        result = self.handler(request)
        if isinstance(result, RESPONSE_TYPES):
            return result  # answered at once: never in flight past this call
        self.in_flight += 1
        if isinstance(result, Future):  # the ASGI layer's: done when the response is
            result.add_done_callback(self._done)
            return result
        return self._counted(result)

    def _done(self, _: Any = None) -> None:
        self.in_flight -= 1

    async def _counted(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        finally:
            self._done()
