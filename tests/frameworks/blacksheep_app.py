"""The test application, in BlackSheep. It marks every streamed answer (SSE included)
``Transfer-Encoding: chunked`` and leaves the chunking to the server. BlackSheep has
no background tasks, and keeps its state on the application, not in the ASGI scope."""

from __future__ import annotations

from typing import Any, AsyncIterator

from blacksheep import Application, Request, Response
from blacksheep.contents import Content, StreamedContent
from blacksheep.server.compression import use_gzip_compression
from blacksheep.server.responses import file, json, redirect, text
from blacksheep.server.routing import Router
from blacksheep.server.sse import ServerSentEventsResponse, TextServerSentEvent

from . import APP_DATE, APP_SERVER, BIG, ETAG, ORIGIN, numbers, ticks


def make(path: str, events: list[str]) -> Any:
    # A router of its own: the default one is shared by every Application made.
    app = Application(router=Router(), show_error_details=False)
    app.use_cors(allow_origins=[ORIGIN], allow_methods="*")
    use_gzip_compression(app)
    state: dict[str, str] = {}
    get, post = app.router.get, app.router.post

    @app.lifespan
    async def lifespan() -> AsyncIterator[None]:
        events.append("startup")
        state["db"] = "connected"
        yield
        events.append("shutdown")

    @get("/items/{int:id}")
    async def item(request: Request, id: int) -> Response:
        q = request.query.get("q")
        return json({"id": id, "q": q[0] if q else None})

    @post("/json")
    async def json_echo(request: Request) -> Response:
        return json({**(await request.json()), "seen": True}, status=201)

    @post("/form")
    async def form(request: Request) -> Response:
        if request.declares_content_type(b"multipart/form-data"):
            upload = (await request.files("file"))[0]
            return json({"name": upload.file_name.decode(), "size": len(upload.data)})
        return json(await request.form())

    @get("/stream")
    async def stream() -> Response:
        async def body() -> AsyncIterator[bytes]:
            async for line in numbers():
                yield line.encode()

        return Response(200, content=StreamedContent(b"text/plain", body))

    @get("/file")
    async def send_file() -> Response:
        with open(path, "rb") as f:
            data = f.read()
        return file(data, "text/plain")

    @get("/big")
    async def big() -> Response:
        return text(BIG)

    @get("/state")
    async def read_state() -> Response:
        return text(state["db"])

    @get("/boom")
    async def boom() -> Response:
        raise RuntimeError("view failed")

    @get("/go")
    async def go() -> Response:
        return redirect("/items/1")

    @get("/slash/")
    async def slash() -> Response:
        return text("slash")

    @post("/created")
    async def created() -> Response:
        return Response(201)

    @post("/accepted")
    async def accepted() -> Response:
        return Response(202)

    @get("/nothing")
    async def nothing() -> Response:
        return Response(204)

    @get("/cached")
    async def cached(request: Request) -> Response:
        if request.get_first_header(b"if-none-match") == ETAG.encode():
            return Response(304, [(b"ETag", ETAG.encode())])
        return Response(200, [(b"ETag", ETAG.encode())], Content(b"text/plain", b"fresh"))

    @get("/sse")
    async def sse() -> Response:
        async def events() -> AsyncIterator[TextServerSentEvent]:
            async for n, data in ticks():
                yield TextServerSentEvent(data, id=str(n))

        return ServerSentEventsResponse(events)

    @get("/own-server")
    async def own_server() -> Response:
        headers = [(b"Server", APP_SERVER.encode()), (b"Date", APP_DATE.encode())]
        return Response(200, headers, Content(b"text/plain", b"own"))

    return app
