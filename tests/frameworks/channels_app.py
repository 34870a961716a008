"""A Django Channels application: an ``AsyncHttpConsumer`` behind Channels' own routers,
as its documentation sets one up. A consumer hands ``receive()`` to
``asyncio.ensure_future`` and waits with ``asyncio.wait``, where other frameworks
``await`` it.

Django's settings are configured once a process: by ``django_app``, whose settings
serve this application too (it needs no settings of its own).
"""

from __future__ import annotations

from typing import Any

from channels.generic.http import AsyncHttpConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from . import django_app  # noqa: F401 (configures Django)


class Echo(AsyncHttpConsumer):
    """Answers with the method and the whole body it was sent."""

    async def handle(self, body: bytes) -> None:
        answer = self.scope["method"].encode() + b" " + body
        await self.send_response(200, answer, headers=[(b"content-type", b"text/plain")])


def make() -> Any:
    return ProtocolTypeRouter({"http": URLRouter([path("echo", Echo.as_asgi())])})
