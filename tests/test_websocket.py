"""WebSocket (RFC 6455, RFC 7692) through real sockets on both cores: the handshake, frames
hand-made by a raw client and by the ``websockets`` sans-I/O client as an adversary (every
violation answered with its close code), the ``websockets`` client for interop, flow
control on a fake transport, keep-alive, shutdown."""

from __future__ import annotations

import asyncio
import logging
import struct
import tracemalloc
import zlib
from typing import Any, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

import cyhttp

from .support import eventually, read_until_closed

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example, and its answer
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = b"\x37\xfa\x21\x3d"


def handshake(path: str = "/", *extra: str, version: str = "13") -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: x",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        f"Sec-WebSocket-Version: {version}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(
    opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """A client's frame, made by hand."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 65536:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(8, struct.pack("!H", code) + reason)


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The server's frames in *data*: (opcode, payload), unmasked as servers send them."""
    frames = []
    while data:
        n = data[1] & 0x7F
        at = 2
        if n == 126:
            n, at = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", data[2:10])[0], 10
        assert not data[1] & 0x80, "a server's frames are never masked"
        frames.append((data[0] & 0x0F, data[at : at + n]))
        data = data[at + n :]
    return frames


def close_of(frames: list[tuple[int, bytes]]) -> int:
    """The code of the close frame the server ended with."""
    opcode, payload = frames[-1]
    assert opcode == 8, frames
    return struct.unpack("!H", payload[:2])[0]


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def app(request: cyhttp.Request) -> Any:
    if request.path == "/refuse":
        return cyhttp.Response(b"no", 403)
    if request.path == "/proto":
        return cyhttp.accept_websocket(request, echo, subprotocol="b", headers={"X-Chat": "1"})
    if request.path == "/fail":

        async def failing(ws: Any) -> None:
            await ws.receive()
            raise RuntimeError("handler bug")

        return cyhttp.accept_websocket(request, failing)
    if request.path == "/bye":

        async def bye(ws: Any) -> None:
            await ws.send(f"{ws.request.headers.get('origin')} {ws.subprotocol}")
            await ws.close(4000, "bye")

        return cyhttp.accept_websocket(request, bye)
    if request.path == "/hold":

        async def hold(ws: Any) -> None:
            await ws.send("ready")
            async for _ in ws:
                pass

        return cyhttp.accept_websocket(request, hold)
    return cyhttp.accept_websocket(request, echo)


def exchange(
    srv: Any, data: bytes, request: bytes | None = None, then: bytes = b"", echoes: int = 0
) -> tuple[bytes, bytes]:
    """Handshake, send *data*; once *echoes* frames have come back send *then*; read until
    the server closes: (101 head, frames)."""
    with srv.connect() as sock:
        sock.sendall((request or handshake()) + data)
        got = b""
        while got.count(b"\r\n\r\n") == 0 or len(read_frames(_complete(got))) < echoes:
            got += sock.recv(65536)
        sock.sendall(then)
        got += read_until_closed(sock)
    head, _, rest = got.partition(b"\r\n\r\n")
    return head, rest


def _complete(data: bytes) -> bytes:
    """The whole frames after the head in *data*."""
    rest = data.partition(b"\r\n\r\n")[2]
    whole = 0
    while len(rest) - whole >= 2:
        n = rest[whole + 1] & 0x7F
        at = {126: 4, 127: 10}.get(n, 2)
        if n >= 126:
            n = int.from_bytes(rest[whole + 2 : whole + at], "big")
        if len(rest) - whole < at + n:
            break
        whole += at + n
    return rest[:whole]


# -- the handshake ----------------------------------------------------------------


def test_handshake_answers_101_with_the_accept_key(live):
    with live(app) as srv:
        head, rest = exchange(srv, frame(1, b"hi"), then=close_frame(1000), echoes=1)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" in head
    assert b"\r\nSec-WebSocket-Accept: " + ACCEPT in head
    assert b"Sec-WebSocket-Protocol" not in head and b"Sec-WebSocket-Extensions" not in head
    assert read_frames(rest) == [(1, b"hi"), (8, b"\x03\xe8")]


def test_other_versions_get_426_naming_13(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(handshake(version="8"))
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in data


@pytest.mark.parametrize(
    "bad",
    [
        handshake().replace(KEY.encode(), b"short=="),
        handshake().replace(b"GET", b"DELETE"),
        handshake().replace(b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n", b""),
    ],
)
def test_a_bad_handshake_gets_400(live, bad):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(bad)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")


async def test_subprotocol_and_headers_the_handler_chooses(live):
    with live(app) as srv:
        url = f"ws://127.0.0.1:{srv.port}/proto"
        async with connect(url, subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
            assert ws.response.headers["X-Chat"] == "1"
            await ws.send("x")
            assert await ws.recv() == "x"


async def test_a_handler_refuses_with_an_http_answer(live):
    with live(app) as srv:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{srv.port}/refuse"):
                pass
        assert refused.value.response.status_code == 403


def test_a_subprotocol_not_offered_is_a_logged_500(live, caplog):
    with caplog.at_level(logging.ERROR, logger="cyhttp"), live(app) as srv:
        head, _ = exchange(srv, b"", handshake("/proto", "Sec-WebSocket-Protocol: a"))
    assert head.startswith(b"HTTP/1.1 500 ")
    assert "subprotocol 'b' was not offered" in caplog.text


# -- messages ---------------------------------------------------------------------


async def test_echo_with_the_websockets_client(live):
    with live(app) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/", max_size=None) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff" * 40000)
            assert await ws.recv() == b"\x00\xff" * 40000
            # Fragmented: the client sends one message in many frames.
            await ws.send(iter([b"a" * 70000, b"b" * 70000, b"c"]))
            assert await ws.recv() == b"a" * 70000 + b"b" * 70000 + b"c"
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
        assert ws.close_code == 1000
        assert eventually(lambda: srv.server.connections == set())  # the handler has ended


def test_fragments_with_control_frames_between(live):
    with live(app) as srv:
        _, rest = exchange(
            srv,
            frame(1, b"fragm", fin=False)
            + frame(9, b"ping!")
            + frame(0, "ent é".encode(), fin=False)
            + frame(10, b"unsolicited pong")
            + frame(0, b"d"),
            then=close_frame(1000, b"done"),
            echoes=2,
        )
    assert read_frames(rest) == [(10, b"ping!"), (1, "fragment éd".encode()), (8, b"\x03\xe8")]


VIOLATIONS = {
    "unmasked": (frame(1, b"x", masked=False), 1002),
    "reserved bit": (frame(1, b"x", rsv=2), 1002),
    "rsv1 without deflate": (frame(1, b"x", rsv=4), 1002),
    "unknown opcode": (frame(3, b"x"), 1002),
    "unknown control opcode": (frame(11, b"x"), 1002),
    "fragmented ping": (frame(9, b"x", fin=False), 1002),
    "ping of 126 bytes": (frame(9, b"x" * 126), 1002),
    "continuation first": (frame(0, b"x"), 1002),
    "text inside a text": (frame(1, b"x", fin=False) + frame(1, b"y"), 1002),
    "close of one byte": (frame(8, b"\x03"), 1002),
    "close code 999": (close_frame(999), 1002),
    "close code 1005": (close_frame(1005), 1002),
    "close code 2999": (close_frame(2999), 1002),
    "close code 1006": (close_frame(1006), 1002),
    "close code 1015": (close_frame(1015), 1002),
    "close code 5000": (close_frame(5000), 1002),
    "close reason past 123 bytes": (close_frame(1000, b"x" * 124), 1002),
    "fragmented close": (frame(8, b"\x03\xe8", fin=False), 1002),
    "invalid UTF-8": (frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),
    "invalid UTF-8 in the close reason": (close_frame(1000, b"\xff"), 1007),
    "too big": (frame(2, b"x" * 2000), 1009),
    "too big in fragments": (frame(2, b"x" * 1000, fin=False) + frame(0, b"x" * 1000), 1009),
}


@pytest.mark.parametrize("name", VIOLATIONS)
def test_violations_close_with_their_code(live, name):
    data, code = VIOLATIONS[name]
    with live(app, ws_max_size=1500) as srv:
        _, rest = exchange(srv, data + frame(1, b"never echoed"))
    frames = read_frames(rest)
    assert close_of(frames) == code
    assert (1, b"never echoed") not in frames


def test_invalid_utf8_is_caught_in_the_fragment_that_has_it(live):
    with live(app) as srv, srv.connect() as sock:
        # The second fragment cannot begin any valid UTF-8; the message never ends.
        sock.sendall(handshake() + frame(1, b"ok", fin=False) + frame(0, b"\xf4\x90", fin=False))
        _, _, rest = read_until_closed(sock).partition(b"\r\n\r\n")
    assert close_of(read_frames(rest)) == 1007


def test_a_close_code_and_reason_are_echoed_and_valid_codes_accepted(live):
    with live(app) as srv:
        for code in (1000, 1001, 1003, 1007, 1011, 3000, 4999):
            _, rest = exchange(srv, close_frame(code, b"reason"))
            assert read_frames(rest) == [(8, struct.pack("!H", code))]
        _, rest = exchange(srv, frame(8))
        assert read_frames(rest) == [(8, b"")]  # no code in, none out


async def test_the_handler_closes_with_code_and_reason(live):
    with live(app) as srv:
        url = f"ws://127.0.0.1:{srv.port}/bye"
        async with connect(url, origin="http://example.com") as ws:
            assert await ws.recv() == "http://example.com None"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "bye")


async def test_a_failing_handler_closes_with_1011(live, caplog):
    with caplog.at_level(logging.ERROR, logger="cyhttp"), live(app) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/fail") as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1011
    assert "handler bug" in caplog.text


# -- time, shutdown, logs ------------------------------------------------------------


def test_an_unanswered_keepalive_ping_closes_with_1011(live):
    with live(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as srv, srv.connect() as sock:
        sock.sendall(handshake())  # and never a pong
        _, _, rest = read_until_closed(sock).partition(b"\r\n\r\n")
    frames = read_frames(rest)
    assert frames[0][0] == 9 and len(frames[0][1]) == 4
    assert close_of(frames) == 1011


async def test_answered_pings_keep_the_connection(live):
    with live(app, ws_ping_interval=0.1, ws_ping_timeout=0.2) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/") as ws:  # answers pings itself
            await asyncio.sleep(0.8)
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_shutdown_closes_with_1001_and_waits_for_the_handler(live):
    with live(app) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/hold") as ws:
            assert await ws.recv() == "ready"
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, srv.shutdown, 5)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1001
        assert srv.server.connections == set()


def test_the_access_log_has_a_line_per_session(live, caplog):
    with caplog.at_level(logging.INFO, logger="cyhttp.access"):
        with live(app, access_log=True) as srv:
            exchange(srv, close_frame(1000), handshake("/chat?room=1"))
            # The line is written once the handler has finished.
            assert eventually(lambda: '"WebSocket /chat?room=1" 1000' in caplog.text)


def test_max_connections_counts_websockets(live):
    with live(app, max_connections=1) as srv, srv.connect() as sock:
        sock.sendall(handshake("/hold"))
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")
        with srv.connect() as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = read_until_closed(other)
            except ConnectionResetError:  # closed with the request unread
                answer = b""
            assert answer == b""  # the WebSocket holds the one place


# -- flow control, on a fake transport --------------------------------------------


async def test_a_full_queue_pauses_reading_until_the_handler_reads(conn):
    taken: list[Any] = []
    go = asyncio.Event()

    async def slow(ws: Any) -> None:
        await go.wait()
        async for message in ws:
            taken.append(message)

    c = conn(lambda request: cyhttp.accept_websocket(request, slow), ws_max_queue=4)
    c.feed(handshake())
    await c.settle()
    ws = c.transport.protocol
    ws.data_received(b"".join(frame(1, b"%d" % i) for i in range(10)))
    assert not c.transport.reading  # four queued, six waiting unparsed
    go.set()
    await c.settle()
    assert taken == [str(i) for i in range(10)] and c.transport.reading


async def test_send_waits_while_the_transport_is_over_its_high_water_mark(conn):
    sent: list[int] = []

    async def push(ws: Any) -> None:
        await ws.receive()
        for i in range(3):
            await ws.send(b"x" * 10)
            sent.append(i)

    c = conn(lambda request: cyhttp.accept_websocket(request, push))
    c.feed(handshake())
    await c.settle()
    c.transport.pause_on_write = True
    c.transport.protocol.data_received(frame(1, b"go"))
    await c.settle()
    assert sent == []  # the first send waits for the transport
    c.transport.drain()
    await c.settle()
    assert sent == [0, 1, 2]


# -- permessage-deflate -----------------------------------------------------------


async def test_compressed_echo_with_the_websockets_client(live):
    with live(app, ws_per_message_deflate=True) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/", compression="deflate") as ws:
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            for message in ("text " * 1000, b"\x00" * 100000, "é"):
                await ws.send(message)
                assert await ws.recv() == message


def test_a_compression_bomb_closes_with_1009_before_inflating_it(live):
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\x00" * (64 * 1024 * 1024)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    offer = "Sec-WebSocket-Extensions: permessage-deflate"
    with live(app, ws_per_message_deflate=True) as srv:
        tracemalloc.start()  # zlib's buffers too: it allocates through Python's allocator
        try:
            head, rest = exchange(srv, frame(2, data[:-4], rsv=4), handshake("/", offer))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(data) < 70_000  # 64 MiB of zeros
    assert peak < 8 << 20  # inflating stopped past ws_max_size (1 MiB), long before 64 MiB
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in head
    assert close_of(read_frames(rest)) == 1009


# -- the sans-I/O client of websockets as an adversary ----------------------------------
# It makes the handshake and parses the server's answer as a real client would; the frames
# it refuses to make (reserved bits, impossible lengths) are made by hand.


def adversary(
    srv: Any, attack: Callable[[ClientProtocol], bytes], deflate: bool = False
) -> ClientProtocol:
    """websockets' ``ClientProtocol`` connected to *srv*: after the handshake it sends what
    *attack* made it queue, then the bytes *attack* returned, and reads the server's answer
    until the server closes."""
    extensions = [ClientPerMessageDeflateFactory()] if deflate else None
    uri = parse_uri(f"ws://127.0.0.1:{srv.port}/")
    client = ClientProtocol(uri, extensions=extensions, max_size=None)
    client.send_request(client.connect())
    with srv.connect() as sock:
        sock.sendall(b"".join(client.data_to_send()))
        while client.state is State.CONNECTING:
            client.receive_data(sock.recv(65536))
        assert client.state is State.OPEN, client.handshake_exc
        client.events_received()  # the handshake's response
        raw = attack(client)
        sock.sendall(b"".join(client.data_to_send()) + raw)
        client.receive_data(read_until_closed(sock))
    client.receive_eof()
    return client


def _fragments(first: bytes, *rest: bytes) -> Callable[[ClientProtocol], bytes]:
    """Text fragments, sent by the client as they are (it does not check UTF-8)."""

    def attack(client: ClientProtocol) -> bytes:
        client.send_text(first, fin=not rest)
        for i, part in enumerate(rest, 1):
            client.send_continuation(part, fin=i == len(rest))
        return b""

    return attack


def _raw(data: bytes) -> Callable[[ClientProtocol], bytes]:
    return lambda client: data


BOMB = zlib.compressobj(9, zlib.DEFLATED, -15)
BOMB_DATA = BOMB.compress(b"\x00" * (16 << 20)) + BOMB.flush(zlib.Z_SYNC_FLUSH)[:-4]
BOMB_PIECES = [BOMB_DATA[at : at + 1024] for at in range(0, len(BOMB_DATA), 1024)]

ATTACKS = {
    "invalid UTF-8 across fragments": (_fragments(b"ok\xce", b"A"), False, 1007),
    "text ending inside a character": (_fragments(b"ok\xce"), False, 1007),
    "surrogate split across fragments": (_fragments(b"\xed", b"\xa0\x80"), False, 1007),
    "length over 2**63": (_raw(bytes((0x82, 0xFF, 0x80)) + bytes(7) + MASK), False, 1002),
    # Refused at the head: the server does not wait for (or buffer) a terabyte.
    "a terabyte announced": (_raw(bytes((0x82, 0xFF)) + (1 << 40).to_bytes(8, "big")), False, 1009),
    "binary past max size, compressed": (lambda c: c.send_binary(bytes(2000)) or b"", True, 1009),
    "rsv1 on a continuation": (
        _raw(frame(2, b"\x02\x00", fin=False, rsv=4) + frame(0, b"\x00", rsv=4)),
        True,
        1002,
    ),
    "rsv1 on a ping": (_raw(frame(9, b"x", rsv=4)), True, 1002),
    "invalid compressed data": (_raw(frame(2, b"\xff\xff\xff", rsv=4)), True, 1007),
    "a compression bomb in fragments": (
        _raw(
            frame(2, BOMB_PIECES[0], fin=False, rsv=4)
            + b"".join(frame(0, piece, fin=False) for piece in BOMB_PIECES[1:])
            + frame(0, b"")
        ),
        True,
        1009,
    ),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_a_client_that_attacks_gets_the_close_code(live, name):
    attack, deflate, code = ATTACKS[name]
    with live(app, ws_max_size=1500, ws_per_message_deflate=True) as srv:
        client = adversary(srv, lambda c: attack(c) + frame(1, b"never echoed"), deflate)
    assert client.close_rcvd is not None and client.close_rcvd.code == code
    assert not [e for e in client.events_received() if e.opcode != Opcode.CLOSE]


def test_characters_split_across_fragments_are_whole_again(live):
    pieces = (b"caf\xc3", b"\xa9 ", b"\xe2\x82", b"\xac")
    data = frame(1, pieces[0], fin=False) + frame(0, pieces[1], fin=False)
    data += frame(0, pieces[2], fin=False) + frame(0, pieces[3])
    with live(app) as srv:
        _, rest = exchange(srv, data, then=close_frame(1000), echoes=1)
    assert read_frames(rest) == [(1, "café €".encode()), (8, b"\x03\xe8")]
