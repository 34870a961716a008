"""A lost connection is freed at once, by reference counting, however it ended.

The protocol's parts refer to each other; if a lost connection kept those
references it would wait for Python's cyclic GC, which under load runs rarely
for objects that lived a while (connections), and its buffers would pile up.
Both cores.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

import cyhttp
from cyhttp import SwitchProtocols

from .support import Conn

UPGRADE = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _stream() -> Any:
    yield b"part"
    await asyncio.Event().wait()  # the client leaves before the end


async def app(request: cyhttp.Request) -> Any:
    if request.path == "/wait":
        await asyncio.Event().wait()
    if request.path == "/stream":
        return cyhttp.StreamingResponse(_stream())
    if request.path == "/chat":
        return SwitchProtocols(Echo, "echo")
    return cyhttp.Response(b"ok")


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is kind)


@pytest.mark.parametrize(
    ("data", "client_leaves"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),  # answered, kept alive, then closed
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),  # closed by us
        (b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", True),  # a handler still waiting
        (b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", True),  # a body still streaming
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\npart", True),  # half a body
        (b"GET /bad path HTTP/1.1\r\n\r\n", True),  # refused with 400, then lingering
        (UPGRADE + b"tail", True),  # handed over to another protocol
    ],
    ids=["answered", "closed", "waiting", "streaming", "half-body", "refused", "switched"],
)
async def test_a_lost_connection_is_freed_without_the_cyclic_gc(
    impl, no_cyclic_gc, data, client_leaves
):
    c = Conn(app, impl)
    kind = type(c.protocol)
    before = _alive(kind)
    c.feed(data)
    await c.settle()
    if client_leaves:
        c.transport.close()
    await c.settle()
    assert c.transport.ended and c.server.connections == set()
    assert c.data.startswith(b"HTTP/1.1 ") or data.startswith(b"GET /wait")  # never answered
    del c
    await asyncio.sleep(0)
    assert _alive(kind) == before - 1
