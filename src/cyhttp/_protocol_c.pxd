# cython: language_level=3
# The C types of the compiled build of _protocol.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _protocol_c, with these declarations). Nothing here is logic.

cimport cython

from ._primitives cimport Output, ResponseFields, Scanner
# The compiled Request as CRequest: _protocol.py names the pure class Request for type checkers.
from ._request cimport Request as CRequest

cdef Py_ssize_t LARGE_BODY, HEAD_EXTRA, STALL_SLACK, WRITE_HIGH_WATER, WRITE_LOW_WATER
cdef int PAUSE_WRITE, PAUSE_BODY, PAUSE_PIPELINE, PAUSE_UPGRADE
cdef int OPEN, LAST, CLOSING, LINGERING, GONE
cdef int FLAG_CONTENT_LENGTH, FLAG_CLOSE, FLAG_DATE, FLAG_SERVER
cdef bytes CONTINUE
cdef list STATUS_LINE_TABLE
cdef Py_ssize_t SERVER_LINE
cdef dict METHODS


@cython.locals(size=Py_ssize_t)
cdef str method_name(bytes method)


@cython.final
@cython.freelist(16)
cdef class _Slot:
    cdef CRequest request
    cdef object response
    cdef object task
    cdef bint deferred


cdef class _Connection:
    cdef Py_ssize_t _max_url
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_headers
    cdef Py_ssize_t _max_body
    cdef int _max_pipeline
    cdef Py_ssize_t _idle_limit
    cdef Py_ssize_t _head_limit
    cdef Py_ssize_t _body_limit
    cdef Py_ssize_t _write_limit
    cdef Py_ssize_t _linger_limit

    cdef object _server
    cdef object _app
    cdef object _parser
    cdef object _transport
    cdef object _buffer
    cdef Py_ssize_t _buffer_size
    cdef bytearray _buffer_bytes
    cdef Scanner _scanner
    cdef object _frames
    cdef Output _out
    cdef ResponseFields _fields
    cdef public object client

    cdef Py_ssize_t _stall_limit
    cdef bytes _url
    cdef list _headers
    cdef list _trailers
    cdef bint _expect
    cdef bint _in_head
    cdef bint _advanced
    cdef Py_ssize_t _stalled
    cdef Py_ssize_t _head_size
    cdef list _hosts
    cdef list _codings
    cdef bint _keep_option
    cdef unsigned long long _content_length  # llhttp refuses more than 64 bits
    cdef long long _body_size
    cdef bint _body_progress
    cdef bint _in_message
    cdef bint _followed
    cdef unsigned long long _scanned_left
    cdef CRequest _req
    cdef CRequest _upgrade
    cdef bytes _tail
    cdef bint _dispatched
    cdef object _pending
    cdef bint _in_read
    cdef int _state
    cdef bint _serializing
    cdef bint _half_close
    cdef Py_ssize_t _linger_ticks
    cdef int _paused
    cdef bint _write_paused
    cdef object _room_waiter
    cdef object _stream_task
    cdef Py_ssize_t _requests
    cdef Py_ssize_t _seen
    cdef Py_ssize_t _idle
    cdef Py_ssize_t _head_ticks
    cdef Py_ssize_t _body_ticks
    cdef Py_ssize_t _write_ticks

    @cython.locals(scanner=Scanner, pos=Py_ssize_t, size=Py_ssize_t, start=Py_ssize_t)
    cdef Py_ssize_t _scan(self, Py_ssize_t nbytes) except -1

    @cython.locals(size=Py_ssize_t)
    cdef Py_ssize_t _scanned_body(self, Py_ssize_t pos, Py_ssize_t end) except -1

    cdef _on_trailer(self, bytes name, bytes value)

    cdef _refused(self, exc)

    cdef _guard_stall(self, Py_ssize_t nbytes)

    @cython.locals(req=CRequest)
    cdef _open(self, str method, bytes url, headers, bint http10, bint keep_alive, bint expect)

    cdef _body(self, bytes body)

    @cython.locals(req=CRequest)
    cdef _message_done(self)

    @cython.locals(slot=_Slot)
    cdef _dispatch(self, CRequest req)

    cdef _settle(self, _Slot slot, result)

    cdef _enqueue(self, _Slot slot)

    @cython.locals(slot=_Slot, req=CRequest)
    cdef _send_ready(self)

    cdef _upgrading(self, bytes tail)

    cdef _switch(self, switch)

    cdef _callback_failed(self, exc)

    @cython.locals(slot=_Slot, req=CRequest)
    cdef _fail(self, int status)

    @cython.locals(
        fields=ResponseFields, out=Output, status=int, flags=int, head=bytes, body=bytes,
        keep=bint, has_body=bint, send_body=bint, chunked=bint, inline_body=bint,
        line=bytes, block=bytes,
    )
    cdef _respond(self, CRequest req, response, bint last)

    cdef _continue(self, CRequest req)

    cdef _write_out(self)

    cdef _flush(self)

    cdef _pause(self, int reason)

    cdef _unpause(self, int reason)

    cdef void _to(self, int state) noexcept

    cdef _close(self, transport)

    cdef _expire(self)
