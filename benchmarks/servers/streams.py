"""Pure-Python baseline: the classic ``asyncio.start_server`` streams server, keep-alive correct."""

import asyncio

import uvloop

from ._common import BIG, HELLO, Date, parse_head, port, realistic, response

date = Date()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target, length, close, agent = parse_head(head[:-4])
            body = await reader.readexactly(length) if length else b""
            answer = realistic(target, agent, date, close)
            if answer is None:
                if target == b"/echo":
                    payload = body
                else:
                    payload = HELLO if target == b"/" else BIG
                answer = response(payload, date, close)
            writer.write(answer)
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
