"""The same small application written with each ASGI framework the tests serve.

Every app answers the routes ``tests/test_frameworks.py`` drives: path and query
parameters, JSON in and out, urlencoded and multipart forms, a streamed body, a
file, CORS and GZip middleware, a background task, lifespan state and a view that
raises. Each module's ``make(path_of_file, events)`` builds a fresh application.

They also answer the everyday responses ``tests/test_framework_responses.py`` checks
against uvicorn: a redirect (``/go``), a trailing-slash route (``/slash/``), empty
``201``/``202`` answers (``POST /created``, ``/accepted``), a ``204`` (``/nothing``),
a ``304`` for ``If-None-Match: ETAG`` (``/cached``), Server-Sent Events (``/sse``:
``ticks()``) and an answer with its own ``Server`` and ``Date`` (``/own-server``).

Starlette, FastAPI and Django Channels also serve the ``/chat`` WebSocket (``chat()``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator

ORIGIN = "http://example.org"
BIG = "cyhttp " * 1000  # large enough for GZip


async def numbers() -> AsyncIterator[str]:
    """The streamed body: three lines, with a real wait between them."""
    for n in range(3):
        yield f"{n}\n"
        await asyncio.sleep(0.01)


ETAG = '"v1"'
APP_SERVER = "the-app"
APP_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"

# Set by the client once it has read the first event: the stream goes on only then, so
# a server that held the events back until the end would never deliver the first.
FIRST_EVENT_READ = threading.Event()


async def ticks() -> AsyncIterator[tuple[int, str]]:
    """The events of ``/sse``: (id, data) three times, the last two after the client has
    read the first (or 5 s)."""
    for n in range(1, 4):
        yield n, f"tick {n}"
        if n == 1:
            for _ in range(500):
                if FIRST_EVENT_READ.is_set():
                    break
                await asyncio.sleep(0.01)


async def chat(websocket: Any, events: list[str]) -> None:
    """The ``/chat`` WebSocket on Starlette's ``WebSocket`` (FastAPI's is the same class):
    accepts with the ``chat`` subprotocol, echoes text and binary messages, closes with
    4000 on ``bye``; the code a client closes with goes to *events*."""
    await websocket.accept(subprotocol="chat")
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            events.append(f"closed {message['code']}")
            return
        if message.get("text") == "bye":
            await websocket.close(4000, "asked to")
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])
