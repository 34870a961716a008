"""Server for the soak test: ``python tests/soak_server.py IMPL``; prints its port."""

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
        stats = {
            "served": served,
            "tasks": len(asyncio.all_tasks()),
            "connections": len(server.connections),
        }
        return cyhttp.Response(json.dumps(stats))
    if request.path == "/big":
        return cyhttp.StreamingResponse(_big())
    if request.path == "/echo":
        return cyhttp.Response(await request.body())
    return HELLO


server = cyhttp.Server(app, port=0, implementation=sys.argv[1], keepalive_timeout=2.0)


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
