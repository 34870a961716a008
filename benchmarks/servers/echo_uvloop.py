"""The WebSocket suite's ceiling: a uvloop protocol that writes back whatever it reads.

No framing, no handshake: what the event loop and the kernel cost to move the
same bytes, against which the WebSocket servers' echo is measured.
"""

import asyncio

import uvloop

from ._common import port


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port())
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
