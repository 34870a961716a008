"""Server for the soak test: ``python tests/soak_server.py IMPL {native,asgi}``; prints its
port. The two applications answer the same routes with the same bytes."""

from __future__ import annotations

import asyncio
import json
import sys

import cyhttp

HELLO = cyhttp.Response(b"Hello, world!", content_type="text/plain")
served = 0


async def _big():
    for _ in range(64):
        yield b"x" * 16384
        await asyncio.sleep(0)


async def app(request: cyhttp.Request) -> cyhttp.Response | cyhttp.StreamingResponse:
    global served
    served += 1
    if request.path == "/stats":
        return cyhttp.Response(_stats())
    if request.path == "/big":
        return cyhttp.StreamingResponse(_big())
    if request.path == "/echo":
        return cyhttp.Response(await request.body())
    if request.path == "/late":  # a large body, read once the handler gets round to it
        await asyncio.sleep(0.005)
        return cyhttp.Response(b"%d" % len(await request.body()))
    return HELLO


def _stats() -> bytes:
    stats = {
        "served": served,
        "tasks": len(asyncio.all_tasks()),
        "connections": len(server.connections),
    }
    return json.dumps(stats).encode()


async def asgi_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
    global served
    served += 1
    path = scope["path"]
    more = {"type": "http.response.body", "body": b"x" * 16384, "more_body": True}
    if path == "/big":  # streamed: the application suspends and runs on in its Task
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(64):
            await send(more)
            await asyncio.sleep(0)
        await send({"type": "http.response.body"})
        return
    if path in ("/echo", "/late"):
        if path == "/late":
            await asyncio.sleep(0.005)
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, headers = b"".join(chunks), []
        if path == "/late":
            body = b"%d" % len(body)
    elif path == "/stats":
        body, headers = _stats(), []
    else:
        body, headers = b"Hello, world!", [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


server = cyhttp.Server(
    asgi_app if sys.argv[2] == "asgi" else app,
    port=0,
    implementation=sys.argv[1],
    keepalive_timeout=2.0,
    lifespan="off",
)


async def main() -> None:
    await server.start()
    print(server.port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    import signal

    import uvloop

    async def run() -> None:
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, lambda: asyncio.ensure_future(server.shutdown())
        )
        await main()

    uvloop.run(run())
