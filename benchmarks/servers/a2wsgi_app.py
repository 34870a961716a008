"""The WSGI apps as ASGI ones through a2wsgi: how cyhttp served WSGI before its own
interface (``raw``: the raw app; ``flask``: the Flask one)."""

from a2wsgi import WSGIMiddleware

from . import flask_app, wsgi_app

raw = WSGIMiddleware(wsgi_app.app)
flask = WSGIMiddleware(flask_app.app)
