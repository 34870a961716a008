"""The ceiling: a uvloop protocol that parses nothing and answers every blank line.

It counts ``\\r\\n\\r\\n`` in what it reads and writes that many answers in one
write. No server that parses HTTP can beat it, which makes it the yardstick for
what the event loop and the kernel cost.

For the realistic route (a read that mentions ``/items/``) it still parses
nothing, but builds every answer as the other servers do, per request: the JSON
with orjson from the values the load suite sends, and the head with its two
extra fields. That is the least any server running the realistic handler's own
work can cost, so it bounds the ratio any core can reach over the baselines.
"""

import asyncio

import uvloop

from ._common import HELLO, Date, item_answer, port, response

date = Date()

# What the load suite's realistic requests carry; taken as given, since nothing is parsed.
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
EXTRA = b"Cache-Control: no-store\r\nX-Item: 42\r\n"


def realistic_answer() -> bytes:
    """One realistic answer, built as a handler builds it: JSON and head per request."""
    body = item_answer("42", "abc", "2", AGENT)
    return response(body, date, False, b"application/json", EXTRA)


class Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.tail = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        data = self.tail + data
        count = data.count(b"\r\n\r\n")
        self.tail = data[-3:]
        if not count:
            return
        if b"/items/" in data:
            self.transport.write(b"".join([realistic_answer() for _ in range(count)]))
        else:
            self.transport.write(response(HELLO, date) * count)


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port())
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
