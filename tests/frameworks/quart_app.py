"""The test application, in Quart (CORS by hand: Quart ships no CORS middleware)."""

from __future__ import annotations

import gzip
import io
from typing import Any

from quart import Quart, Response, jsonify, redirect, request, send_file
from quart.wrappers.response import DataBody

from . import APP_DATE, APP_SERVER, BIG, ETAG, ORIGIN, numbers, ticks


def make(file: str, events: list[str]) -> Any:
    app = Quart(__name__)

    @app.before_serving
    async def startup() -> None:
        events.append("startup")
        app.config["DB"] = "connected"

    @app.after_serving
    async def shutdown() -> None:
        events.append("shutdown")

    @app.after_request
    async def cors_and_gzip(response: Response) -> Response:
        if request.headers.get("Origin") == ORIGIN:
            response.headers["Access-Control-Allow-Origin"] = ORIGIN
            response.headers["Vary"] = "Origin"
        body = response.response  # only a body held in memory is compressed
        accepts = "gzip" in request.headers.get("Accept-Encoding", "")
        if accepts and isinstance(body, DataBody) and len(body.data) >= 500:
            response.set_data(gzip.compress(body.data))
            response.headers["Content-Encoding"] = "gzip"
        return response

    @app.route("/items/<int:id>")
    async def item(id: int) -> Any:
        return jsonify({"id": id, "q": request.args.get("q")})

    @app.route("/items/<int:id>", methods=["OPTIONS"])
    async def preflight(id: int) -> Any:
        return "", 200, {"Access-Control-Allow-Methods": "GET, POST"}

    @app.post("/json")
    async def json_echo() -> Any:
        data = await request.get_json()
        return jsonify({**data, "seen": True}), 201

    @app.post("/form")
    async def form() -> Any:
        files = await request.files
        upload = files.get("file")
        if upload is not None:
            return jsonify({"name": upload.filename, "size": len(upload.read())})
        return jsonify(dict((await request.form).items()))

    @app.route("/stream")
    async def stream() -> Any:
        async def body() -> Any:
            async for line in numbers():
                yield line.encode()

        return body(), 200, {"Content-Type": "text/plain"}

    @app.route("/file")
    async def file_view() -> Any:
        # From memory: Quart reads a path through aiofiles, whose close runs in a thread,
        # and Quart cancels the handler as soon as receive() says http.disconnect (which
        # it does once the response is complete, under uvicorn too): the close can be cut
        # short and the file left open.
        with open(file, "rb") as f:
            data = f.read()
        return await send_file(io.BytesIO(data), mimetype="text/plain")

    @app.route("/big")
    async def big() -> Any:
        return BIG, 200, {"Content-Type": "text/plain"}

    @app.route("/state")
    async def state() -> Any:
        return app.config["DB"], 200, {"Content-Type": "text/plain"}

    @app.route("/background")
    async def background() -> Any:
        app.add_background_task(events.append, "background")
        return "queued", 200, {"Content-Type": "text/plain"}

    @app.route("/boom")
    async def boom() -> Any:
        raise RuntimeError("view failed")

    @app.route("/go")
    async def go() -> Any:
        return redirect("/items/1")

    @app.route("/slash/")
    async def slash() -> Any:
        return "slash", 200, {"Content-Type": "text/plain"}

    @app.post("/created")
    @app.post("/accepted")
    async def empty() -> Any:
        return "", 201 if request.path == "/created" else 202

    @app.route("/nothing")
    async def nothing() -> Any:
        return "", 204

    @app.route("/cached")
    async def cached() -> Any:
        if request.headers.get("If-None-Match") == ETAG:
            return "", 304, {"ETag": ETAG}
        return "fresh", 200, {"ETag": ETAG, "Content-Type": "text/plain"}

    @app.route("/sse")
    async def sse() -> Any:
        async def events() -> Any:
            async for n, data in ticks():
                yield f"id: {n}\ndata: {data}\n\n".encode()

        response = Response(events(), content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.timeout = None
        return response

    @app.route("/own-server")
    async def own_server() -> Any:
        return "own", 200, {"Server": APP_SERVER, "Date": APP_DATE, "Content-Type": "text/plain"}

    return app
