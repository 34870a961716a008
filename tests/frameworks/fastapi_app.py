"""The test application, in FastAPI (with pydantic models)."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Optional

from fastapi import BackgroundTasks, FastAPI, Form, Request, Response, UploadFile, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from . import BIG, ORIGIN, chat, numbers
from .starlette_app import RESPONSE_ROUTES


class Payload(BaseModel):
    a: int
    seen: bool = False


def make(file: str, events: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"])

    @app.get("/items/{id}")
    async def item(id: int, q: Optional[str] = None) -> dict[str, Any]:
        return {"id": id, "q": q}

    @app.post("/json", status_code=201)
    async def json_echo(payload: Payload) -> Payload:
        return Payload(a=payload.a, seen=True)

    @app.post("/form")
    async def form(request: Request) -> dict[str, Any]:
        async with request.form() as fields:
            upload = fields.get("file")
            if upload is not None and not isinstance(upload, str):
                content = await upload.read()
                return {"name": upload.filename, "size": len(content)}
            return dict(fields)

    @app.post("/upload")
    async def upload(file: UploadFile, note: str = Form()) -> dict[str, Any]:
        return {"name": file.filename, "size": len(await file.read()), "note": note}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(numbers(), media_type="text/plain")

    @app.get("/file")
    async def send_file() -> FileResponse:
        return FileResponse(file)

    @app.get("/big", response_class=PlainTextResponse)
    async def big() -> str:
        return BIG

    @app.get("/state", response_class=PlainTextResponse)
    async def state(request: Request) -> str:
        return str(request.state.db)

    @app.get("/background", response_class=PlainTextResponse)
    async def background(tasks: BackgroundTasks) -> str:
        tasks.add_task(events.append, "background")
        return "queued"

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("view failed")

    @app.websocket("/chat")
    async def chat_session(websocket: WebSocket) -> None:
        await chat(websocket, events)

    # FastAPI's own way to answer an empty 201/202: a status_code and no body.
    @app.post("/created", status_code=201, response_class=Response)
    async def created() -> None:
        return None

    @app.post("/accepted", status_code=202)
    async def accepted() -> Response:
        return Response(status_code=202)

    # The rest as Starlette's: FastAPI serves Starlette responses as they are.
    app.router.routes.extend(RESPONSE_ROUTES)
    return app
