"""cyhttp, either core: ``python -m benchmarks.servers.cyhttp_app {cython,python} PORT``."""

import sys

import cyhttp

from ._common import BIG, HELLO, port

HELLO_RESPONSE = cyhttp.Response(HELLO, content_type="text/plain")
BIG_RESPONSE = cyhttp.Response(BIG, content_type="text/plain")


async def app(request: cyhttp.Request) -> cyhttp.Response:
    path = request.raw_path
    if path == b"/":
        return HELLO_RESPONSE
    if path == b"/echo":
        return cyhttp.Response(await request.body(), content_type="text/plain")
    return BIG_RESPONSE


if __name__ == "__main__":
    cyhttp.run(app, "127.0.0.1", port(), loop="uvloop", implementation=sys.argv[1])
