"""The RSGI app run by granian's native interface."""

from ._common import BIG, HELLO

HEADERS = [("content-type", "text/plain")]


async def app(scope, protocol):
    if scope.path == "/echo":
        body = await protocol()
    else:
        body = HELLO if scope.path == "/" else BIG
    protocol.response_bytes(200, HEADERS, body)
