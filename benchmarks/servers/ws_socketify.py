"""socketify.py's WebSocket echo: ``python -m benchmarks.servers.ws_socketify {native,asgi}
PORT``.

``native`` is its own WebSocket API (uWebSockets' callbacks), ``asgi`` its ASGI
server running ``ws_asgi``. Both allow 2 MiB messages (its native default is
16 KiB) and compress nothing.
"""

import sys

from socketify import ASGI, App, OpCode

from ._common import port
from .ws_asgi import app as asgi_app

LIMIT = 2 * 1024 * 1024


def message(ws, data, opcode: OpCode) -> None:
    ws.send(data, opcode)


if __name__ == "__main__":
    if sys.argv[1] == "asgi":
        server = ASGI(asgi_app, websocket_options={"max_payload_length": LIMIT}, lifespan=False)
    else:
        server = App()
        server.ws("/*", {"max_payload_length": LIMIT, "message": message})
    server.listen(port(), lambda config: None)
    server.run()
