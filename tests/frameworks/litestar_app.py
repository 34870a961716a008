"""The test application, in Litestar."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Optional

from litestar import Litestar, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.response import File, Redirect, Response, ServerSentEvent, Stream
from litestar.response.sse import ServerSentEventMessage

from . import APP_DATE, APP_SERVER, BIG, ETAG, ORIGIN, numbers, ticks


@get("/go")
async def go() -> Redirect:
    return Redirect(path="/items/1")


@get("/slash/", media_type="text/plain")
async def slash() -> str:
    return "slash"


@post("/created")
async def created() -> Response[bytes]:
    return Response(b"", status_code=201)


@post("/accepted")
async def accepted() -> Response[bytes]:
    return Response(b"", status_code=202)


@get("/nothing", status_code=204)
async def nothing() -> None:
    return None


@get("/cached")
async def cached(request: Request[Any, Any, Any]) -> Response[str]:
    if request.headers.get("if-none-match") == ETAG:
        return Response("", status_code=304, headers={"ETag": ETAG})
    return Response("fresh", headers={"ETag": ETAG}, media_type="text/plain")


@get("/sse")
async def sse() -> ServerSentEvent:
    async def events() -> AsyncIterator[ServerSentEventMessage]:
        async for n, data in ticks():
            yield ServerSentEventMessage(data=data, id=str(n))

    return ServerSentEvent(events())


@get("/own-server")
async def own_server() -> Response[str]:
    return Response(
        "own", headers={"Server": APP_SERVER, "Date": APP_DATE}, media_type="text/plain"
    )


RESPONSE_HANDLERS = [go, slash, created, accepted, nothing, cached, sse, own_server]


def make(file: str, events: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        events.append("startup")
        app.state.db = "connected"
        yield
        events.append("shutdown")

    @get("/items/{id:int}")
    async def item(id: FromPath[int], q: FromQuery[Optional[str]] = None) -> dict[str, Any]:
        return {"id": id, "q": q}

    @post("/json", status_code=201)
    async def json_echo(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return {**data, "seen": True}

    @post("/form", status_code=200)
    async def form(request: Request[Any, Any, Any]) -> dict[str, Any]:
        fields = await request.form()
        upload = fields.get("file")
        if upload is not None and not isinstance(upload, str):
            content = await upload.read()
            return {"name": upload.filename, "size": len(content)}
        return dict(fields)

    @post("/urlencoded", status_code=200)
    async def urlencoded(data: URLEncodedBody[dict[str, str]]) -> dict[str, str]:
        return data

    @get("/stream")
    async def stream() -> Stream:
        return Stream(numbers(), media_type="text/plain")

    @get("/file")
    async def send_file() -> File:
        return File(file, filename="hello.txt", content_disposition_type="inline")

    @get("/big", media_type="text/plain")
    async def big() -> str:
        return BIG

    @get("/state", media_type="text/plain")
    async def state(state: State) -> str:
        return str(state.db)

    @get("/background", media_type="text/plain")
    async def background() -> Response[str]:
        return Response("queued", background=BackgroundTask(events.append, "background"))

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("view failed")

    return Litestar(
        route_handlers=[
            item,
            json_echo,
            form,
            urlencoded,
            stream,
            send_file,
            big,
            state,
            background,
            boom,
            *RESPONSE_HANDLERS,
        ],
        lifespan=[lifespan],
        cors_config=CORSConfig(allow_origins=[ORIGIN], allow_methods=["*"]),
        compression_config=CompressionConfig(backend="gzip", minimum_size=500),
        debug=False,
    )
