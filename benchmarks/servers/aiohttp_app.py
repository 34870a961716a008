"""aiohttp's web server on uvloop."""

import uvloop
from aiohttp import web

from ._common import BIG, HELLO, item_answer, port


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/plain")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="text/plain")


async def item(request: web.Request) -> web.Response:
    item_id = request.match_info["item"]
    body = item_answer(
        item_id,
        request.query.get("q"),
        request.query.get("page"),
        request.headers.get("User-Agent"),
    )
    return web.Response(
        body=body,
        headers={"Cache-Control": "no-store", "X-Item": item_id},
        content_type="application/json",
    )


async def big(request: web.Request) -> web.Response:
    return web.Response(body=BIG, content_type="text/plain")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/64k", big)
    app.router.add_get("/items/{item}", item)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port(),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
