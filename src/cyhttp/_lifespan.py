"""The ASGI lifespan protocol: an application's startup and shutdown, and its state.

The application is called once with a ``lifespan`` scope, in a Task that lives as
long as the server. ``startup`` runs before the server listens and ``shutdown``
after its last connection closed (they are the server's first startup and last
shutdown hooks). With ``lifespan="auto"`` an application that raises before it
answers the startup event is taken not to support lifespan and is served anyway;
with ``"on"`` that is a failed startup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

__all__ = ["LIFESPAN_MODES", "Lifespan", "LifespanFailed"]

log = logging.getLogger("cyhttp")

LIFESPAN_MODES = ("auto", "on", "off")


class LifespanFailed(RuntimeError):
    """The application reported, or raised, a failed lifespan startup or shutdown."""


class Lifespan:
    """Drives one application's lifespan: ``await startup()``, later ``await shutdown()``."""

    def __init__(self, app: Any, mode: str, state: Dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.task: Optional[asyncio.Task[None]] = None
        self.events: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
        self.answer: Optional[asyncio.Future[Dict[str, Any]]] = None
        self.unsupported = False

    async def receive(self) -> Dict[str, Any]:
        return await self.events.get()

    async def send(self, message: Dict[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"ASGI lifespan: unknown message type {kind!r}")
        answer = self.answer
        if answer is None or answer.done():
            if kind.endswith(".failed"):
                # Valid at any point: Starlette reports its lifespan Task being cancelled
                # (the server stopping without a shutdown event) as shutdown.failed.
                self.unasked(kind, message)
                return
            raise RuntimeError(f"ASGI lifespan: unexpected message {message!r}")
        answer.set_result(message)

    def unasked(self, kind: str, message: Dict[str, Any]) -> None:
        """A failure reported when no event waits for it: a line in the log."""
        task = asyncio.current_task()
        stopping = task is not None and task.cancelling() > 0
        log.log(
            logging.DEBUG if stopping else logging.WARNING,
            "ASGI lifespan: the application reported %s: %s",
            kind,
            message.get("message", ""),
        )

    async def run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            answer = self.answer
            if answer is not None and not answer.done():
                answer.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                log.exception("ASGI lifespan: the application failed")
            if not isinstance(exc, Exception):
                raise
        else:
            answer = self.answer
            if answer is not None and not answer.done():
                answer.set_exception(RuntimeError("the application returned from lifespan"))

    async def _event(self, kind: str) -> Optional[Dict[str, Any]]:
        """Send *kind*; the application's answer, or None if it returned or raised."""
        self.answer = asyncio.get_running_loop().create_future()
        await self.events.put({"type": f"lifespan.{kind}"})
        try:
            return await self.answer
        except Exception as exc:
            if kind == "startup" and self.mode == "auto":
                self.unsupported = True
                log.info(
                    "ASGI 'lifespan' protocol appears unsupported (%r): serving without it", exc
                )
                return None
            raise LifespanFailed(f"the application failed its lifespan {kind}: {exc!r}") from exc

    async def startup(self) -> None:
        """Run the application's startup; :class:`LifespanFailed` if it reports failure."""
        self.task = asyncio.get_running_loop().create_task(self.run())
        answer = await self._event("startup")
        if answer is not None and answer["type"].endswith(".failed"):
            raise LifespanFailed(f"the application failed its startup: {answer.get('message', '')}")

    async def shutdown(self) -> None:
        """Run the application's shutdown; :class:`LifespanFailed` if it reports failure."""
        if self.task is None or self.unsupported or self.task.done():
            return
        try:
            answer = await self._event("shutdown")
        finally:
            # An application returns once it has answered; one that lingers is cancelled.
            await asyncio.wait({self.task}, timeout=1.0)
            if not self.task.done():
                self.task.cancel()
        if answer is not None and answer["type"].endswith(".failed"):
            raise LifespanFailed(
                f"the application failed its shutdown: {answer.get('message', '')}"
            )
