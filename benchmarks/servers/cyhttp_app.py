"""cyhttp: ``python -m benchmarks.servers.cyhttp_app {cython,python} [async] PORT``.

The handler is a plain function, the cheapest handler form cyhttp documents:
it returns a ready response, or, for ``/echo``, the coroutine that reads the
body (a handler may return an awaitable of a response). With ``async`` the
same routes are served by an ``async def`` handler, the form most apps use.
"""

import sys

import cyhttp

from ._common import BIG, HELLO, port

HELLO_RESPONSE = cyhttp.Response(HELLO, content_type="text/plain")
BIG_RESPONSE = cyhttp.Response(BIG, content_type="text/plain")


async def echo(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(await request.body(), content_type="text/plain")


def app(request: cyhttp.Request):
    path = request.raw_path
    if path == b"/":
        return HELLO_RESPONSE
    if path == b"/echo":
        return echo(request)
    return BIG_RESPONSE


async def async_app(request: cyhttp.Request) -> cyhttp.Response:
    path = request.raw_path
    if path == b"/":
        return HELLO_RESPONSE
    if path == b"/echo":
        return await echo(request)
    return BIG_RESPONSE


if __name__ == "__main__":
    handler = async_app if "async" in sys.argv else app
    cyhttp.run(handler, "127.0.0.1", port(), loop="uvloop", implementation=sys.argv[1])
