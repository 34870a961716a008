"""Where each request line lies in the bytes httptools reads.

httptools reports a request's parts, but not the request line as received,
and llhttp is lenient about that line (see ``_strict.request_line_error``). So
the core follows the message boundaries in the raw bytes alongside httptools:

* a head ends at its first empty line, which is exact because llhttp refuses
  bare CR, bare LF and obsolete line folding;
* a body is stepped over by the framing httptools reported for its head:
  ``Content-Length`` bytes, or the chunked framing, read only as far as finding
  its end needs (chunk sizes, then the trailer section's empty line).

llhttp refuses malformed framing first or at the same byte, so the follower
never judges framing itself; if it ever lost track, ``head`` returns None and
the core refuses the request (fail closed).
"""

from __future__ import annotations

from typing import Optional

# What the follower is in the middle of.
EMPTY_LINES = 0  # before a request line: CRLF pairs are skipped (RFC 9112 §2.2)
HEAD = 1  # a request head, up to its empty line
BODY = 2  # Content-Length bytes
SIZE = 3  # a chunk-size line
DATA = 4  # chunk data and the CRLF after it
TRAILERS = 5  # the trailer section, up to its empty line
OFF = 6  # nothing more will be parsed on this connection

_HEX = b"0123456789abcdefABCDEF"


class Frames:
    """Follows one connection's message boundaries through the bytes fed to httptools."""

    __slots__ = ("_carry", "_data", "_left", "_pos", "_state", "_stop")

    def __init__(self) -> None:
        self._state = EMPTY_LINES
        self._carry = b""  # the unfinished line or section from earlier reads
        self._left = 0  # bytes still to step over in BODY and DATA
        self._data: bytes | bytearray = b""  # the read buffer, read in place ...
        self._pos = 0
        self._stop = 0  # ... up to here: what lies beyond is stale

    def at_boundary(self) -> bool:
        """Whether the bytes so far end between messages, with nothing held back (llhttp
        skips a CR before a request line silently; the follower keeps it to judge)."""
        return self._state == EMPTY_LINES and not self._carry

    def restart(self) -> None:
        """A message starts with the next bytes (the compiled core's scanner hands over)."""
        self._state = EMPTY_LINES
        self._carry = b""

    def stop(self) -> None:
        """Nothing more is parsed: follow no further."""
        self._state = OFF
        self._carry = b""

    def begin(self, data: bytes | bytearray, start: int, stop: int) -> None:
        """``data[start:stop]`` is about to be fed to httptools (read in place, not copied)."""
        self._data = data
        self._pos = start
        self._stop = stop

    def end(self) -> None:
        """httptools took every byte given to ``begin``: keep what is unfinished."""
        self._advance(False)
        self._data = b""
        self._stop = 0

    def head(self) -> Optional[bytes]:
        """httptools completed a head: its request line (no CRLF), or None if not found."""
        return self._advance(True)

    def body(self, length: int, chunked: bool) -> None:
        """The framing of the message whose head ``head`` just returned."""
        if chunked:
            self._state = SIZE
        elif length:
            self._state = BODY
            self._left = length
        else:
            self._state = EMPTY_LINES

    def pending(self) -> bytes:
        """The unfinished head's bytes so far (to tell an unknown method from garbage)."""
        self._advance(False)
        return self._carry if self._state in (HEAD, OFF) else b""

    # -- the walk --------------------------------------------------------

    def _advance(self, to_head: bool) -> Optional[bytes]:
        size = self._stop
        while True:
            state = self._state
            if state == OFF:
                return None
            if state == BODY or state == DATA:
                step = min(self._left, size - self._pos)
                self._pos += step
                self._left -= step
                if self._left:
                    return None
                self._state = EMPTY_LINES if state == BODY else SIZE
            elif state == EMPTY_LINES:
                if not self._skip_empty_lines():
                    return None
            else:
                section = self._until(b"\r\n\r\n" if state != SIZE else b"\r\n")
                if section is None:
                    return None
                if state == HEAD:
                    if to_head:
                        return bytes(section[: section.find(b"\r\n")])
                    # A head httptools did not complete: it refused it. Kept for ``pending``.
                    self._state = OFF
                    self._carry = section
                elif state == TRAILERS:
                    self._state = EMPTY_LINES
                else:
                    self._chunk(section)

    def _skip_empty_lines(self) -> bool:
        """Step over CRLF pairs; True once a request line starts."""
        data, size = self._data, self._stop
        while True:
            if self._pos >= size:
                return False
            byte = data[self._pos]
            if self._carry == b"\r":
                if byte != 0x0A:
                    break  # a bare CR: kept, for the request line check to refuse
                self._carry = b""
                self._pos += 1
            elif byte == 0x0D:
                self._carry = b"\r"
                self._pos += 1
            else:
                break
        self._state = HEAD
        return True

    def _chunk(self, line: bytes) -> None:
        digits = 0
        while digits < len(line) and line[digits] in _HEX:
            digits += 1
        size = int(line[:digits], 16) if digits else 0
        if size:
            self._state = DATA
            self._left = size + 2  # the data and its CRLF
        else:
            self._state = TRAILERS
            self._carry = (
                b"\r\n"  # the last chunk's line end: an empty trailer section ends at once
            )

    def _until(self, sep: bytes) -> Optional[bytes]:
        """The current line or section through *sep*, from where it began; None if not here yet."""
        data, pos, stop, carry = self._data, self._pos, self._stop, self._carry
        end = -1
        if carry:
            # The separator may straddle the boundary between reads.
            keep = carry[1 - len(sep) :]
            hit = (keep + data[pos : min(pos + len(sep) - 1, stop)]).find(sep)
            if hit >= 0:
                end = pos + hit + len(sep) - len(keep)
        if end < 0:
            hit = data.find(sep, pos, stop)
            if hit >= 0:
                end = hit + len(sep)
        if end < 0:
            self._carry = carry + data[pos:stop]
            self._pos = stop
            return None
        self._carry = b""
        self._pos = end
        return carry + data[pos:end]
