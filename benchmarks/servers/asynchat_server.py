"""The design cyhttp descends from: a terminator-framed ``asynchat`` server on ``asyncore``.

asynchat/asyncore are in the standard library up to Python 3.11; the
``pyasynchat``/``pyasyncore`` backports provide them on 3.12 and later.
"""

import socket
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asynchat
    import asyncore

from ._common import BIG, HELLO, Date, parse_head, port, realistic, response

date = Date()


class Channel(asynchat.async_chat):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.ac_out_buffer_size = 65536
        self.pieces: list[bytes] = []
        self.target = b""
        self.agent: bytes | None = None
        self.close_after = False
        self.set_terminator(b"\r\n\r\n")

    def collect_incoming_data(self, data: bytes) -> None:
        self.pieces.append(data)

    def found_terminator(self) -> None:
        data = b"".join(self.pieces)
        self.pieces.clear()
        if isinstance(self.get_terminator(), int):  # the body is complete
            self.reply(data)
            self.set_terminator(b"\r\n\r\n")
            return
        self.target, length, self.close_after, self.agent = parse_head(data)
        if length:
            self.set_terminator(length)
        else:
            self.reply(b"")

    def reply(self, body: bytes) -> None:
        answer = realistic(self.target, self.agent, date, self.close_after)
        if answer is None:
            if self.target == b"/echo":
                payload = body
            else:
                payload = HELLO if self.target == b"/" else BIG
            answer = response(payload, date, self.close_after)
        self.push(answer)
        if self.close_after:
            self.close_when_done()


class Server(asyncore.dispatcher):
    def __init__(self, listen_port: int) -> None:
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", listen_port))
        self.listen(1024)

    def handle_accepted(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Channel(sock)


if __name__ == "__main__":
    Server(port())
    asyncore.loop(timeout=1, use_poll=True)
