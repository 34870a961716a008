"""Hypothesis feeds random, mutated and split frame streams to both cores' WebSocket
connections (on a fake transport): the same bytes answer, the same messages arrive, no
exception escapes, and nothing is left behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cyhttp

from .support import IMPLS, Conn, new_loop
from .test_websocket import frame, handshake

frames = st.builds(
    frame,
    st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11]),
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=50).map(lambda t: t.encode()),
        st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\x0f\xa0", b"\x03\xe7"]),
    ),
    st.booleans(),
    st.sampled_from([0, 0, 0, 4, 2]),
    st.sampled_from([True, True, True, False]),
)


@st.composite
def streams(draw: Any) -> tuple[bytes, list[int]]:
    data = bytearray(b"".join(draw(st.lists(frames, max_size=12))))
    for _ in range(draw(st.integers(0, 3))):  # a few flipped bytes
        if data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return bytes(data), cuts


def run(impl: str, data: bytes, cuts: list[int], deflate: bool) -> tuple[bytes, list[Any]]:
    """What core *impl* writes after its 101, and the messages its handler received."""
    received: list[Any] = []

    async def session(ws: Any) -> None:
        async for message in ws:
            received.append(message)

    async def main() -> bytes:
        before = asyncio.all_tasks()
        c = Conn(
            lambda request: cyhttp.accept_websocket(request, session),
            impl,
            ws_max_size=300,
            ws_per_message_deflate=deflate,
        )
        offer = ("Sec-WebSocket-Extensions: permessage-deflate",) if deflate else ()
        c.feed(handshake("/", *offer))
        await c.settle()
        ws = c.transport.protocol
        start = len(c.transport.data)
        for piece in (data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)):
            if not c.transport.closed:
                ws.data_received(piece)
            await asyncio.sleep(0)
        c.transport.close()
        await c.settle()
        assert asyncio.all_tasks() - before == set()  # the handler's task has ended
        assert c.server.connections == set()
        return c.transport.data[start:]

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main()), received


@pytest.mark.skipif(len(IMPLS) < 2 or IMPLS[0].marks[0].args[0], reason="needs both cores")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.booleans())
def test_both_cores_answer_random_frame_streams_alike(stream, deflate):
    data, cuts = stream
    assert run("cython", data, cuts, deflate) == run("python", data, cuts, deflate)
