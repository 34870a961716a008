"""Applications for the worker-process tests (``tests/test_workers.py``)."""

from __future__ import annotations

import asyncio
import os
import time

import cyhttp

hoard: list[bytes] = []


async def app(request: cyhttp.Request) -> cyhttp.Response:
    if request.path == "/slow":
        await asyncio.sleep(1.0)
    elif request.path == "/hang":
        time.sleep(30)  # blocks the worker's loop: no heartbeat
    elif request.path == "/grow":
        hoard.append(b"x" * (64 << 20))
    return cyhttp.Response(str(os.getpid()).encode())


async def broken(scope, receive, send):  # type: ignore[no-untyped-def]
    """An ASGI application whose lifespan startup fails."""
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.failed", "message": "no database at db:5432"})


def _fastapi() -> object:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/health")
    async def health() -> str:
        return "ok"

    return api


fastapi_app = _fastapi()
