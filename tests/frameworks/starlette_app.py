"""The test application, in Starlette."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from . import BIG, ORIGIN, numbers


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
        ],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"]),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        lifespan=lifespan,
    )
