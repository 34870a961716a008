"""The test application, in Starlette."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import APP_DATE, APP_SERVER, BIG, ETAG, ORIGIN, chat, numbers, ticks


async def go(request: Request) -> RedirectResponse:
    return RedirectResponse("/items/1")


async def slash(request: Request) -> PlainTextResponse:
    return PlainTextResponse("slash")


async def empty(request: Request) -> Response:
    return Response(status_code=201 if request.url.path == "/created" else 202)


async def nothing(request: Request) -> Response:
    return Response(status_code=204)


async def cached(request: Request) -> Response:
    if request.headers.get("if-none-match") == ETAG:
        return Response(status_code=304, headers={"ETag": ETAG})
    return PlainTextResponse("fresh", headers={"ETag": ETAG})


async def sse(request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, Any]]:
        async for n, data in ticks():
            yield {"id": str(n), "data": data}

    return EventSourceResponse(events())


async def own_server(request: Request) -> PlainTextResponse:
    return PlainTextResponse("own", headers={"Server": APP_SERVER, "Date": APP_DATE})


async def upload_size(request: Request) -> PlainTextResponse:
    """Counts the request body as it streams in (never holding it)."""
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return PlainTextResponse(str(size))


POSTED = {"/created": empty, "/accepted": empty, "/upload-size": upload_size}
GOT = {"/go": go, "/slash/": slash, "/nothing": nothing, "/cached": cached, "/sse": sse}
RESPONSE_ROUTES = [
    *(Route(path, view) for path, view in GOT.items()),
    *(Route(path, view, methods=["POST"]) for path, view in POSTED.items()),
    Route("/own-server", own_server),
]


def make(file: str, events: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})

    async def json_echo(request: Request) -> JSONResponse:
        data = await request.json()
        return JSONResponse({**data, "seen": True}, status_code=201)

    async def form(request: Request) -> JSONResponse:
        async with request.form() as fields:
            upload = fields.get("file")
            if upload is not None and not isinstance(upload, str):
                content = await upload.read()
                return JSONResponse({"name": upload.filename, "size": len(content)})
            return JSONResponse(dict(fields))

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(numbers(), media_type="text/plain")

    async def send_file(request: Request) -> FileResponse:
        return FileResponse(file)

    async def big(request: Request) -> PlainTextResponse:
        return PlainTextResponse(BIG)

    async def state(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.db)

    async def background(request: Request) -> PlainTextResponse:
        return PlainTextResponse("queued", background=BackgroundTask(events.append, "background"))

    async def boom(request: Request) -> None:
        raise RuntimeError("view failed")

    async def chat_session(websocket: WebSocket) -> None:
        await chat(websocket, events)

    return Starlette(
        routes=[
            Route("/items/{id:int}", item),
            Route("/json", json_echo, methods=["POST"]),
            Route("/form", form, methods=["POST"]),
            Route("/stream", stream),
            Route("/file", send_file),
            Route("/big", big),
            Route("/state", state),
            Route("/background", background),
            Route("/boom", boom),
            WebSocketRoute("/chat", chat_session),
            *RESPONSE_ROUTES,
        ],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"]),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        lifespan=lifespan,
    )
