"""The RSGI app run by granian's native interface."""

from urllib.parse import parse_qsl

from ._common import BIG, HELLO, ITEMS, item_answer

HEADERS = [("content-type", "text/plain")]


async def app(scope, protocol):
    if scope.path.startswith(ITEMS):
        query = dict(parse_qsl(scope.query_string, keep_blank_values=True))
        item = scope.path[len(ITEMS) :]
        body = item_answer(item, query.get("q"), query.get("page"), scope.headers.get("user-agent"))
        headers = [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("x-item", item),
        ]
        protocol.response_bytes(200, headers, body)
        return
    if scope.path == "/echo":
        body = await protocol()
    else:
        body = HELLO if scope.path == "/" else BIG
    protocol.response_bytes(200, HEADERS, body)
