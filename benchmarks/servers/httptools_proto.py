"""Pure-Python baseline: an ``asyncio.Protocol`` feeding httptools, one write per read.

This is the design of uvicorn's httptools protocol without the ASGI layer, and
the fair "same parser, no Cython" comparison for cyhttp.
"""

import asyncio

import httptools
import uvloop

from ._common import BIG, HELLO, Date, port, realistic, response

date = Date()


class Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.agent: bytes | None = None
        self.body: list[bytes] = []
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
            return
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()

    def on_url(self, url):
        self.url = url
        self.agent = None

    def on_header(self, name, value):
        # The one field the realistic route reads, found by hand.
        if len(name) == 10 and name.lower() == b"user-agent":
            self.agent = value

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        if self.url == b"/echo":
            body = b"".join(self.body)
            self.body.clear()
        else:
            body = HELLO if self.url == b"/" else BIG
        keep = self.parser.should_keep_alive()
        answer = realistic(self.url, self.agent, date, not keep)
        self.out.append(answer if answer is not None else response(body, date, close=not keep))
        if not keep:
            self.transport.write(b"".join(self.out))
            self.out.clear()
            self.transport.close()


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port())
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
