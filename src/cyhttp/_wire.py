"""Bytes that both cores put on the wire: status lines, the Date/Server block,
header encoding with response-splitting checks, and the server's own error answers.

Everything here runs once per process, once per second, or once per response
*object* (not per request served with it), so it stays in plain Python and both
cores share it.
"""

from __future__ import annotations

import re
import time
from typing import Iterable, Mapping, Tuple, Union

HeaderValue = Union[str, bytes]
HeadersArg = Union[Mapping[str, HeaderValue], Iterable[Tuple[HeaderValue, HeaderValue]], None]

SERVER_NAME = b"cyhttp"

# Flags a response carries so the core does not rescan its headers per request.
FLAG_CONTENT_LENGTH = 1  # the handler set Content-Length itself
FLAG_CLOSE = 2  # the handler asked for Connection: close
FLAG_DATE = 4  # the handler set Date itself
FLAG_SERVER = 8  # the handler set Server itself
# The head begins with the status line itself: a reason phrase of the application's
# (WSGI's start_response), where the core's table has another.
FLAG_STATUS_LINE = 16
FLAG_MASK = FLAG_CONTENT_LENGTH | FLAG_CLOSE | FLAG_DATE | FLAG_SERVER | FLAG_STATUS_LINE

# RFC 9110 §5.6.2 tchar, the characters of a token (a method, a field name, a protocol
# name): the one definition; the compiled scanner's C table is filled from it (_head.pyx).
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOKEN = frozenset(TOKEN_CHARS)
TOKEN_PATTERN = "[" + re.escape(TOKEN_CHARS.decode("ascii")) + "]+"  # one token, for re

# The methods the compiled head scanner reads itself, in the order of _head.pxd's
# METHOD_* indexes (the test of the tables holds the two to each other).
SCANNED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Reject(Exception):
    """Raised in a parser callback: answer *status* in turn and close the connection.

    *reason* names the rule that refused the request, for the log (and, with the
    ``debug`` setting, the answer's body): a fixed text, never the client's bytes.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


# Reason phrases of the IANA HTTP Status Code Registry (RFC 9110 §15 and the RFCs it
# lists), fixed here: http.HTTPStatus renames some between Python versions (413 and 422
# changed in 3.13), and the bytes on the wire must not depend on the interpreter.
REASONS: dict[int, str] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 421: "Misdirected Request",
    422: "Unprocessable Content", 423: "Locked", 424: "Failed Dependency", 425: "Too Early",
    426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}  # fmt: skip


def _status_line(code: int) -> bytes:
    # An unregistered code keeps the space: "HTTP/1.1 599 " (reason-phrase may be empty).
    return b"HTTP/1.1 %d %s\r\n" % (code, REASONS.get(code, "").encode("ascii"))


STATUS_LINES: dict[int, bytes] = {code: _status_line(code) for code in range(100, 600)}


def status_line(code: int) -> bytes:
    """The pre-encoded status line for *code* (``100 <= code <= 599``)."""
    try:
        return STATUS_LINES[code]
    except KeyError:
        raise ValueError(f"HTTP status must be between 100 and 599, got {code!r}") from None


_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
           b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")  # fmt: skip


def format_date_block(now: float) -> bytes:
    """The ``Server`` and ``Date`` lines (RFC 9110 §5.6.7 IMF-fixdate) for the second *now*."""
    # Formatted here rather than with email.utils, whose import costs every server memory.
    t = time.gmtime(now)
    return b"Server: %s\r\nDate: %s, %02d %s %d %02d:%02d:%02d GMT\r\n" % (
        SERVER_NAME, _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec,
    )  # fmt: skip


class DateBlock:
    """Caches :func:`format_date_block`, re-formatting at most once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        """The current block; formats a new one only when the second changed."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = format_date_block(now)
        return self._value


_FORBIDDEN = frozenset(b"\r\n\x00")
_MANAGED = {
    b"content-length": FLAG_CONTENT_LENGTH,
    b"date": FLAG_DATE,
    b"server": FLAG_SERVER,
}


def _to_bytes(value: HeaderValue, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {what} {value!r} is not latin-1") from None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"header {what} must be str or bytes, not {type(value).__name__}")


def no_body(status: int) -> bool:
    """Whether a response of *status* has no body: 1xx, 204 and 304 (RFC 9110 §6.4.1)."""
    return status < 200 or status == 204 or status == 304


def encode_headers(
    headers: HeadersArg, content_type: HeaderValue | None, status: int = 200
) -> tuple[bytes, int, int]:
    """Encode a handler's headers once, when its response object is built.

    Returns the header block, the FLAG_* bits the core needs, and the declared
    Content-Length (``-1`` if none). Raises ``ValueError`` for names that are not
    tokens and for CR, LF or NUL anywhere: a handler must never be able to split
    a response. The server owns framing and persistence, and takes a handler's word
    as uvicorn does: ``Connection`` is dropped, its ``close`` honoured;
    ``Transfer-Encoding: chunked`` is left to the server (which chunks what it
    streams), any other coding refused; a ``Content-Length`` goes out once, and not
    at all beside ``Transfer-Encoding`` or on a *status* that has no body.
    """
    parts: list[bytes] = []
    flags = 0
    declared = -1
    length_at = -1  # where the Content-Length line is in parts
    chunked = False
    if content_type is not None:
        parts.append(b"Content-Type: " + _check_value(_to_bytes(content_type, "value")) + b"\r\n")
    if headers is not None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for pair in items:
            raw_name, raw_value = header_pair(pair)
            name = _to_bytes(raw_name, "name")
            value = _check_value(_to_bytes(raw_value, "value"))
            if not name or not TOKEN.issuperset(name):
                raise ValueError(f"invalid header name {name!r}")
            lower = name.lower()
            if lower == b"connection":
                if b"close" in (token.strip().lower() for token in value.split(b",")):
                    flags |= FLAG_CLOSE
                continue  # the core writes the Connection header itself
            if lower == b"transfer-encoding":
                if value.strip(b" \t").lower() != b"chunked":
                    raise ValueError(
                        f"Transfer-Encoding {value.decode('latin-1')!r}: the server applies"
                        " no coding but chunked (a compressed body says so in Content-Encoding)"
                    )
                chunked = True
                continue  # the core frames the body: chunked when it streams
            if lower == b"content-length":
                if not value.isdigit():
                    raise ValueError(f"invalid Content-Length {value!r}")
                if length_at >= 0:
                    if int(value) != declared:
                        raise ValueError(f"conflicting Content-Length values {declared}, {value!r}")
                    continue  # the same value again: sent once
                declared = int(value)
                length_at = len(parts)
            flags |= _MANAGED.get(lower, 0)
            parts.append(name + b": " + value + b"\r\n")
    if length_at >= 0 and (chunked or no_body(status)):
        # RFC 9112 §6.1: no Content-Length beside Transfer-Encoding (which frames);
        # RFC 9110 §8.6: none on 1xx and 204; a 304's would describe another response.
        del parts[length_at]
        flags &= ~FLAG_CONTENT_LENGTH
        declared = -1
    return b"".join(parts), flags, declared


def header_pair(pair: object) -> tuple[HeaderValue, HeaderValue]:
    """One ``(name, value)`` item of a handler's headers; TypeError for anything else."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"headers must be (name, value) pairs, not {pair!r}")
    return pair[0], pair[1]


def _check_value(value: bytes) -> bytes:
    if not _FORBIDDEN.isdisjoint(value):
        raise ValueError(f"header value {value!r} contains CR, LF or NUL")
    return value


def error_response(status: int, date_block: bytes, reason: str = "") -> bytes:
    """A complete answer the server sends on its own, always closing the connection;
    its body is the reason phrase, then *reason* (the rule that refused) if given."""
    body = (f"{REASONS[status]}: {reason}\n" if reason else f"{REASONS[status]}\n").encode()
    return (
        b"%s%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status_line(status), date_block, len(body), body)
    )
