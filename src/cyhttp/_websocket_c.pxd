# cython: language_level=3
# The C types of the compiled build of _websocket.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _websocket_c, with these declarations). Nothing here is logic.

cimport cython

cdef int CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG
cdef int NORMAL, GOING_AWAY, PROTOCOL_ERROR, NO_STATUS, ABNORMAL, INVALID_DATA, TOO_BIG
cdef int INTERNAL_ERROR
cdef int OPEN, CLOSING, CLOSED
cdef bytes DEFLATE_TAIL
cdef Py_ssize_t STREAMED


@cython.locals(first=int)
cpdef bytes frame_head(int opcode, Py_ssize_t length, bint rsv1)


@cython.locals(out=bytes)
cpdef bytes unmask(bytes data, Py_ssize_t start, Py_ssize_t length, bytes mask)


cpdef payload_buffer(Py_ssize_t length)


@cython.locals(
    dst=cython.p_uchar, src=cython.p_uchar, quad=cython.uint, turn=int, key=cython.ulonglong,
    word=cython.ulonglong, words=Py_ssize_t, i=Py_ssize_t,
)
cpdef unmask_into(
    bytes out, Py_ssize_t offset, bytes data, Py_ssize_t start, Py_ssize_t length, bytes mask
)


cpdef bint valid_close_code(int code)


@cython.final
cdef class Deflate:
    cdef bint server_takeover
    cdef bint client_takeover
    cdef int server_bits
    cdef int client_bits
    cdef object compressor
    cdef object inflater

    cpdef bytes compress(self, bytes data)
    cpdef inflate(self, bytes data, Py_ssize_t room, bint final)


@cython.final
cdef class WebSocket:
    cdef readonly object server
    cdef readonly object request
    cdef readonly object subprotocol
    cdef Deflate deflate
    cdef object session
    cdef object loop
    cdef readonly object transport
    cdef public Py_ssize_t sweep_due
    cdef public Py_ssize_t sweep_slot
    cdef public bint parked
    cdef int state
    cdef bytearray input
    cdef Py_ssize_t need
    cdef object pending
    cdef int pending_first
    cdef bytes pending_mask
    cdef Py_ssize_t pending_have
    cdef Py_ssize_t pending_length
    cdef list early
    cdef bint gathering
    cdef list out
    cdef Py_ssize_t out_size
    cdef Py_ssize_t max_size
    cdef Py_ssize_t max_queue
    cdef object messages
    cdef object waiter
    cdef bint ended
    cdef bint read_paused
    cdef bint write_paused
    cdef list drains
    cdef object lost
    cdef int kind
    cdef list parts
    cdef Py_ssize_t size
    cdef bint compressed
    cdef object decoder
    cdef bint close_sent
    cdef bint close_received
    cdef readonly int close_code
    cdef readonly str close_reason
    cdef int fail_code
    cdef str fail_reason
    cdef int idle_ticks, pong_ticks, close_ticks, write_ticks
    cdef int ping_limit, pong_limit, close_limit, write_limit
    cdef object ping_payload
    cdef public object task
    cdef bint tracked

    cdef forget(self)

    @cython.locals(size=Py_ssize_t)
    cdef write(self, int opcode, bytes payload, bint rsv1=*)
    cpdef flush(self)  # called back by the loop
    cdef message(self, int opcode, bytes payload)
    cpdef start_close(self, int code, str reason)
    cdef fail(self, int code, str reason)
    cpdef failed(self)  # called back by the loop
    cdef end(self)
    cdef wake(self)
    cdef resume(self)

    @cython.locals(end=Py_ssize_t, pos=Py_ssize_t, at=Py_ssize_t, length=Py_ssize_t,
                   first=int, second=int)
    cdef parse(self, bytes data)

    @cython.locals(have=Py_ssize_t, size=Py_ssize_t)
    cdef Py_ssize_t stream(self, bytes data, Py_ssize_t start)

    cdef bint take(self, int first, bytes payload)

    @cython.locals(opcode=int, limit=Py_ssize_t, compressed=bint)
    cdef bint frame_allowed(self, int first, int second, Py_ssize_t length)

    @cython.locals(opcode=int, final=bint)
    cdef bint frame(self, int first, bytes payload)

    @cython.locals(code=int)
    cdef bint control(self, int opcode, bytes payload)
