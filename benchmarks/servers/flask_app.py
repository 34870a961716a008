"""A Flask application, the same under every WSGI server.

The realistic route is what a Flask user writes for it: a converter for the path
parameter, ``request.args`` and ``request.headers``, an orjson answer with its headers.
"""

from flask import Flask, Response, request

from ._common import BIG, HELLO, item_answer

app = Flask(__name__)


@app.get("/")
def hello():
    return Response(HELLO, mimetype="text/plain")


@app.get("/64k")
def big():
    return Response(BIG, mimetype="text/plain")


@app.post("/echo")
def echo():
    return Response(request.get_data(), mimetype="text/plain")


@app.get("/items/<int:item>")
def item(item):
    body = item_answer(
        str(item),
        request.args.get("q"),
        request.args.get("page"),
        request.headers.get("User-Agent"),
    )
    return Response(
        body,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", "X-Item": str(item)},
    )
