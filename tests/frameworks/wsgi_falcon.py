"""The WSGI test application in Falcon (``tests/test_wsgi_frameworks.py``)."""

from __future__ import annotations

from typing import Any

import falcon

from . import wsgi_shared as shared


class Item:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item: int) -> None:
        resp.media = {"id": item, "q": req.get_param("q")}


class Json:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {**req.get_media(), "seen": True}
        resp.status = falcon.HTTP_201


class Form:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = dict(req.get_media())


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        for part in req.get_media():
            if part.name == "file":
                resp.media = {"name": part.filename, "size": len(part.stream.read())}


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (line.encode() for line in shared.lines())


class Next:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        shared.NEXT.set()
        resp.text = "ok"


class File:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        stream = open(shared.FILE, "rb")  # closed by the server, through the response
        resp.set_stream(stream, len(stream.read()))
        stream.seek(0)

    on_head = on_get  # Falcon answers HEAD only where a resource says so


class Go:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound("/items/1")


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("a view that fails")


class Forbidden:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPForbidden()


def _make() -> Any:
    made = falcon.App()
    made.req_options.auto_parse_form_urlencoded = False  # get_media() parses it
    for route, resource in [
        ("/items/{item:int}", Item()),
        ("/json", Json()),
        ("/form", Form()),
        ("/upload", Upload()),
        ("/stream", Stream()),
        ("/next", Next()),
        ("/file", File()),
        ("/go", Go()),
        ("/boom", Boom()),
        ("/forbidden", Forbidden()),
    ]:
        made.add_route(route, resource)
    return made


app = _make()
