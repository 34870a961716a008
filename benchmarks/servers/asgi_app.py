"""The ASGI app run by uvicorn and by granian's ASGI interface."""

from urllib.parse import parse_qsl

from ._common import BIG, HELLO, ITEMS, item_answer

HEADERS = [(b"content-type", b"text/plain")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith(ITEMS):
        # What an ASGI app does by hand (as Starlette does): parse_qsl, scan the headers.
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        agent = next((v for n, v in scope["headers"] if n == b"user-agent"), None)
        item = path[len(ITEMS) :]
        body = item_answer(item, query.get("q"), query.get("page"), agent and agent.decode())
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"x-item", item.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/echo":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
    else:
        body = HELLO if path == "/" else BIG
    headers = [*HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
