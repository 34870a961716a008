"""The WSGI test application in Flask (``tests/test_wsgi_frameworks.py``)."""

from __future__ import annotations

from typing import Any, Iterator

from flask import Flask, Response, abort, redirect, request, send_file, stream_with_context

from . import wsgi_shared as shared

app = Flask(__name__)


@app.get("/items/<int:item>")
def item(item: int) -> Any:
    return {"id": item, "q": request.args.get("q")}


@app.post("/json")
def json_in_and_out() -> Any:
    return {**request.get_json(), "seen": True}, 201


@app.post("/form")
def form() -> Any:
    return dict(request.form)


@app.post("/upload")
def upload() -> Any:
    sent = request.files["file"]
    return {"name": sent.filename, "size": len(sent.read())}


@app.get("/stream")
def stream() -> Response:
    return Response(stream_with_context(shared.lines()), mimetype="text/plain")


@app.get("/file")
def file() -> Response:
    return send_file(shared.FILE, mimetype="text/plain")


@app.get("/go")
def go() -> Any:
    return redirect("/items/1")


@app.get("/boom")
def boom() -> Iterator[str]:
    raise RuntimeError("a view that fails")


@app.get("/forbidden")
def forbidden() -> None:
    abort(403)


@app.get("/next")
def next_line() -> str:
    shared.NEXT.set()
    return "ok"
