"""cyhttp's native WebSocket echo: ``python -m benchmarks.servers.ws_cyhttp {cython,python}
[deflate] PORT``.

``/ws`` accepts a WebSocket and echoes every message; any other path answers
``Hello, world!`` (the HTTP side of the idle benchmark). ``deflate`` turns on
permessage-deflate (off by default).
"""

import sys

import cyhttp

from ._common import HELLO, port

HELLO_RESPONSE = cyhttp.Response(HELLO, content_type="text/plain")


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


def app(request: cyhttp.Request):
    if request.raw_path == b"/ws":
        return cyhttp.accept_websocket(request, echo)
    return HELLO_RESPONSE


if __name__ == "__main__":
    cyhttp.run(
        app, "127.0.0.1", port(), loop="uvloop", implementation=sys.argv[1],
        ws_per_message_deflate="deflate" in sys.argv,
    )  # fmt: skip
