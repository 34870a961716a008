"""cyhttp: ``python -m benchmarks.servers.cyhttp_app {cython,python} [async] PORT``.

The handler is a plain function, the cheapest handler form cyhttp documents:
it returns a ready response, or, for ``/echo`` and the realistic route, the
coroutine of an ``async def`` handler (a handler may return an awaitable of a
response). With ``async`` the same routes are served by an ``async def``
handler, the form most apps use. The realistic route is what users write:
read the path, the query and a header, build a JSON answer with a header or
two, per request.
"""

import os
import sys

import cyhttp

from ._common import BIG, HELLO, ITEMS, item_answer, port

HELLO_RESPONSE = cyhttp.Response(HELLO, content_type="text/plain")
BIG_RESPONSE = cyhttp.Response(BIG, content_type="text/plain")


async def echo(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(await request.body(), content_type="text/plain")


async def item(request: cyhttp.Request) -> cyhttp.Response:
    item_id = request.path[len(ITEMS) :]
    query = request.query
    body = item_answer(
        item_id, query.get("q"), query.get("page"), request.headers.get("user-agent")
    )
    return cyhttp.Response(
        body,
        headers={"Cache-Control": "no-store", "X-Item": item_id},
        content_type="application/json",
    )


def app(request: cyhttp.Request):
    path = request.raw_path
    if path == b"/":
        return HELLO_RESPONSE
    if path == b"/echo":
        return echo(request)
    if path.startswith(b"/items/"):
        return item(request)
    return BIG_RESPONSE


async def async_app(request: cyhttp.Request) -> cyhttp.Response:
    path = request.raw_path
    if path == b"/":
        return HELLO_RESPONSE
    if path == b"/echo":
        return await echo(request)
    if path.startswith(b"/items/"):
        return await item(request)
    return BIG_RESPONSE


if __name__ == "__main__":
    handler = async_app if "async" in sys.argv else app
    # Over TLS when the load suite says so, in the CLI's variables (benchmarks/load.py --tls).
    tls = {
        "ssl_certfile": os.environ.get("CYHTTP_SSL_CERTFILE"),
        "ssl_keyfile": os.environ.get("CYHTTP_SSL_KEYFILE"),
    }
    cyhttp.run(handler, "127.0.0.1", port(), loop="uvloop", implementation=sys.argv[1], **tls)
