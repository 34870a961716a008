"""The ceiling: a uvloop protocol that parses nothing and answers every blank line.

It counts ``\\r\\n\\r\\n`` in what it reads and writes that many constant
answers in one write. No server that parses HTTP can beat it, which makes it
the yardstick for what the event loop and the kernel cost.
"""

import asyncio

import uvloop

from ._common import HELLO, Date, port, response

date = Date()


class Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.tail = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        data = self.tail + data
        count = data.count(b"\r\n\r\n")
        self.tail = data[-3:]
        if count:
            self.transport.write(response(HELLO, date) * count)


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port())
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
