"""The example app: ``python -m cyhttp examples.hello:app``.

``/`` answers ``Hello, world!``; ``/echo`` returns the request body;
``/stream`` streams a few chunks; anything else is 404.
"""

import asyncio

import cyhttp

HELLO = cyhttp.Response(b"Hello, world!", content_type="text/plain")
NOT_FOUND = cyhttp.Response(b"Not Found\n", status=404, content_type="text/plain")


async def _count():
    for i in range(3):
        yield f"chunk {i}\n"
        await asyncio.sleep(0)


async def app(request: cyhttp.Request) -> cyhttp.Response | cyhttp.StreamingResponse:
    if request.path == "/":
        return HELLO
    if request.path == "/echo":
        return cyhttp.Response(await request.body(), content_type="application/octet-stream")
    if request.path == "/stream":
        return cyhttp.StreamingResponse(_count(), content_type="text/plain")
    return NOT_FOUND


if __name__ == "__main__":
    cyhttp.run(app)
