"""The WSGI test application in Bottle (``tests/test_wsgi_frameworks.py``)."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import bottle

from . import wsgi_shared as shared

app = bottle.Bottle()


@app.get("/items/<item:int>")
def item(item: int) -> Any:
    return {"id": item, "q": bottle.request.query.get("q")}


@app.post("/json")
def json_in_and_out() -> Any:
    bottle.response.status = 201
    return {**bottle.request.json, "seen": True}


@app.post("/form")
def form() -> Any:
    return {key: bottle.request.forms.getunicode(key) for key in bottle.request.forms}


@app.post("/upload")
def upload() -> Any:
    sent = bottle.request.files["file"]
    return {"name": sent.raw_filename, "size": len(sent.file.read())}


@app.get("/stream")
def stream() -> Iterator[str]:
    bottle.response.content_type = "text/plain"
    return shared.lines()


@app.get("/next")
def next_line() -> str:
    shared.NEXT.set()
    return "ok"


@app.get("/file")
def file() -> Any:
    root, name = os.path.split(shared.FILE)
    return bottle.static_file(name, root=root, mimetype="text/plain")


@app.get("/go")
def go() -> None:
    bottle.redirect("/items/1")


@app.get("/boom")
def boom() -> None:
    raise RuntimeError("a view that fails")


@app.get("/forbidden")
def forbidden() -> None:
    bottle.abort(403)


@app.error(404)
def not_found(error: Any) -> str:
    bottle.response.content_type = "application/json"
    return json.dumps({"error": "not found"})
