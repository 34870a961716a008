"""Pure-Python baseline: the classic ``asyncio.start_server`` streams server, keep-alive correct."""

import asyncio

import uvloop

from ._common import BIG, HELLO, Date, port, response

date = Date()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, target, version = lines[0].split(b" ", 2)
            length = 0
            close = version == b"HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            body = await reader.readexactly(length) if length else b""
            if target == b"/echo":
                payload = body
            else:
                payload = HELLO if target == b"/" else BIG
            writer.write(response(payload, date, close))
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port())
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
