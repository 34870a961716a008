"""An ASGI 3 application: ``python -m cyhttp examples.asgi_hello:app``.

What a framework does under the hood, by hand: it answers ``Hello, world!`` at ``/``
and 404 elsewhere, and stores a greeting in the lifespan state at startup.
"""

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = b"Hello, world!"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    found = scope["path"] == "/"
    body = scope["state"]["greeting"] if found else b"Not Found\n"
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200 if found else 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
