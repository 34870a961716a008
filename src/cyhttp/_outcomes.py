"""What a handler's result or failure becomes: the response to send, with what went
wrong logged on ``cyhttp.error`` (a logged 500 in place of a failure)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Union, cast

from . import response as responses
from .errors import ClientDisconnected
from .response import Response, StreamingResponse

if TYPE_CHECKING:
    from .request import Request

log = logging.getLogger("cyhttp.error")

AnyResponse = Union[Response, StreamingResponse]

INTERNAL_ERROR = Response(b"Internal Server Error\n", 500, content_type="text/plain; charset=utf-8")


def checked(result: Any, request: Request) -> AnyResponse:
    """*result* if it is a response; a logged 500 otherwise."""
    if isinstance(result, responses.RESPONSE_TYPES):
        return cast(AnyResponse, result)
    return failed(
        request,
        TypeError(
            f"handler returned {type(result).__name__}, expected Response or StreamingResponse"
        ),
    )


def failed(request: Request, exc: BaseException) -> Response:
    """Log a handler's exception with its traceback and answer 500."""
    log.error("handler failed for %s %r", request.method, request.raw_path, exc_info=exc)
    return INTERNAL_ERROR


def unservable(request: Request, problem: str | None) -> Response:
    """Log why the handler's response cannot be served, and answer 500 instead."""
    log.error(
        "handler for %s %r returned an invalid response: %s",
        request.method,
        request.raw_path,
        problem,
    )
    return INTERNAL_ERROR


def outcome(task: asyncio.Task[Any], request: Request) -> AnyResponse:
    """The response a finished handler Task produced (a logged 500 if it failed)."""
    if task.cancelled():
        return failed(request, asyncio.CancelledError("handler was cancelled"))
    exc = task.exception()
    if exc is not None:
        return failed(request, exc)
    return checked(task.result(), request)


def discard(task: asyncio.Task[Any], request: Request) -> None:
    """Consume the outcome of a handler whose client is gone; log only real failures."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, ClientDisconnected):
            failed(request, exc)


def abandon(task: asyncio.Task[Any]) -> None:
    """Cancel the handler of a vanished client, after the wake-ups already scheduled.

    A handler waiting in ``body()`` or ``stream()`` was just handed
    ``ClientDisconnected``; cancelling at once would replace it with
    ``CancelledError``. One loop step later it has seen the promised exception,
    and a handler suspended anywhere else is cancelled all the same.
    """
    task.get_loop().call_soon(task.cancel)


def not_asked(request: Request) -> Response:
    """A logged 500 for ``SwitchProtocols`` answering a request that asked for no switch."""
    return unservable(request, "SwitchProtocols answers only a request to switch protocols")
