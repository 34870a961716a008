"""Handlers that suspend: finishing a coroutine after its eager first step.

A handler's coroutine is first stepped eagerly by the core, inside the protocol
callback (``call_handler`` of the primitives). Only when that first step suspends
does the core hand the coroutine to :func:`start_task`, whose Task drives it to the
end through :func:`resume`.
"""

from __future__ import annotations

import asyncio
import types
from contextvars import Context
from typing import Any, Generator, Optional


def is_future(obj: Any) -> bool:
    """Whether a Task waits for *obj*: an asyncio Future, or a future-like object
    (asyncio's duck type, such as the WSGI layer's calls)."""
    return getattr(type(obj), "_asyncio_future_blocking", None) is not None


@types.coroutine
def _wait(yielded: Any) -> Generator[Any, None, None]:
    # Re-yield to the Task exactly what the handler's coroutine yielded: a
    # Future (flagged as blocking by Future.__await__) or None for a bare
    # yield such as asyncio.sleep(0).
    yield yielded
    # The Task's first step resumes a primed runner (see start_task) before the
    # future is done: hand the same future to the Task, this time for real.
    # (A Future's type is checked first: the common case, and the cheaper test.)
    while (isinstance(yielded, asyncio.Future) or is_future(yielded)) and not yielded.done():
        yielded._asyncio_future_blocking = True
        yield yielded


async def resume(it: Any, yielded: Any, ctx: Optional[Context] = None) -> Any:
    """Drive the coroutine *it*, whose eager first step yielded *yielded*.

    When the awaited future completes (with a result, an exception or by
    cancellation) the coroutine is resumed with ``send(None)`` and reads the
    outcome from the future itself, exactly as under a plain Task. Anything
    thrown into this Task while it is not waiting on a finished future (a
    cancellation during a bare yield, or before the Task's first step) is
    thrown into the coroutine.
    """
    while True:
        try:
            await _wait(yielded)
        except BaseException as exc:
            if _outcome_of(yielded, exc):
                step = it.send
                arg: Any = None
            else:
                step = it.throw
                arg = exc
        else:
            step = it.send
            arg = None
        try:
            # In *ctx* when given: the coroutine's own context, not this Task's.
            yielded = step(arg) if ctx is None else ctx.run(step, arg)
        except StopIteration as stop:
            return stop.value


def _outcome_of(fut: Any, exc: BaseException) -> bool:
    """Whether *exc*, thrown into the Task, is just *fut* finishing with it.

    Then the handler is resumed normally and reads the outcome from the future
    itself. A cancellation that races with the future completing is not the
    future's outcome: it must reach the handler as a cancellation.
    """
    if not (isinstance(fut, asyncio.Future) or is_future(fut)) or not fut.done():
        return False
    if fut.cancelled():
        return isinstance(exc, asyncio.CancelledError)
    return fut.exception() is exc


def start_task(it: Any, yielded: Any, ctx: Context) -> asyncio.Task[Any]:
    """Finish the suspended handler coroutine *it* in a Task running in *ctx*.

    The runner is first advanced to its first wait, so that even a Task
    cancelled before its first step delivers the cancellation to the handler
    (an unstarted coroutine would drop it without running the handler's
    ``finally`` blocks).
    """
    runner = resume(it, yielded)
    runner.send(None)
    return asyncio.get_running_loop().create_task(runner, context=ctx)


async def awaited(result: Any) -> Any:
    """A coroutine awaiting *result*, an awaitable that is not a coroutine."""
    return await result


def awaitable(result: Any) -> Any:
    """The iterator behind an awaitable handler result; TypeError for anything else."""
    method = getattr(type(result), "__await__", None)
    if method is None:
        raise TypeError(
            f"handler returned {type(result).__name__}, expected Response, "
            "StreamingResponse or an awaitable of one"
        )
    return method(result)
