"""The same small application written with each ASGI framework the tests serve.

Every app answers the routes ``tests/test_frameworks.py`` drives: path and query
parameters, JSON in and out, urlencoded and multipart forms, a streamed body, a
file, CORS and GZip middleware, a background task, lifespan state and a view that
raises. Each module's ``make(path_of_file, events)`` builds a fresh application.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

ORIGIN = "http://example.org"
BIG = "cyhttp " * 1000  # large enough for GZip


async def numbers() -> AsyncIterator[str]:
    """The streamed body: three lines, with a real wait between them."""
    for n in range(3):
        yield f"{n}\n"
        await asyncio.sleep(0.01)
