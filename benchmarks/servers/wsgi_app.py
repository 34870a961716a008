"""The raw WSGI app (PEP 3333, no framework), the same under every WSGI server."""

from urllib.parse import parse_qsl

from ._common import BIG, HELLO, ITEMS, item_answer

TEXT = "text/plain"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith(ITEMS):
        # What a WSGI app does by hand: parse_qsl, the environ's HTTP_ key.
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        item = path[len(ITEMS) :]
        body = item_answer(item, query.get("q"), query.get("page"), environ.get("HTTP_USER_AGENT"))
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("X-Item", item),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    else:
        body = HELLO if path == "/" else BIG
    start_response("200 OK", [("Content-Type", TEXT), ("Content-Length", str(len(body)))])
    return [body]
