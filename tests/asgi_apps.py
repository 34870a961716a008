"""ASGI applications the command-line tests load by name (``tests.asgi_apps:NAME``)."""

from __future__ import annotations

from typing import Any


async def startup_fails(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reports a failed startup, as a framework does when its startup code raises."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database at db:5432"})


class Asgi2:
    """An ASGI 2 application: a class instantiated with the scope alone."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        raise AssertionError("never called")
