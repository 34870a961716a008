# cython: language_level=3
# The C types of the compiled build of _protocol.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _protocol_c, with these declarations). Nothing here is logic.

cimport cython

from ._primitives cimport Landing, Launcher, Output, ResponseFields, Scanner
# The compiled Request as CRequest: _protocol.py names the pure class Request for type checkers.
from ._request cimport Request as CRequest

cdef Py_ssize_t LARGE_BODY, HEAD_EXTRA, STALL_SLACK, WRITE_HIGH_WATER, WRITE_LOW_WATER
cdef int PAUSE_WRITE, PAUSE_BODY, PAUSE_PIPELINE, PAUSE_UPGRADE
cdef double DRAIN_GRACE
cdef int OPEN, LAST, CLOSING, LINGERING, GONE
cdef int TIMED_OUT_HEAD, TIMED_OUT_BODY, TIMED_OUT_IDLE
cdef int FLAG_CONTENT_LENGTH, FLAG_CLOSE, FLAG_DATE, FLAG_SERVER, FLAG_STATUS_LINE
cdef bytes CONTINUE
cdef list STATUS_LINE_TABLE
cdef Py_ssize_t SERVER_LINE
cdef dict METHODS


@cython.locals(size=Py_ssize_t)
cdef str method_name(bytes method)


cdef class _Connection
cdef class _Queue
cdef class _Writer
cdef class _Lifecycle


@cython.final
@cython.freelist(16)
cdef class _Slot:
    cdef CRequest request
    cdef object response
    cdef object task
    cdef bint deferred


@cython.final
cdef class _Shared:
    cdef Scanner scanner
    cdef ResponseFields response_parts
    cdef list flushing
    cdef object loop

    cdef flush_soon(self)

    @cython.locals(conn=_Connection)
    cpdef flush_all(self)


cdef _Shared shared(server)


# The parts call one way (see the module docstring): _Reader over _Queue over _Writer
# over _Lifecycle. Each is final, so every call between them is a direct C call.
@cython.final
cdef class _Reader:
    cdef _Connection conn
    cdef _Queue queue
    cdef _Writer writer
    cdef _Lifecycle life
    cdef Py_ssize_t max_url
    cdef Py_ssize_t max_head
    cdef Py_ssize_t max_headers
    cdef Py_ssize_t max_body
    cdef object buffer
    cdef Py_ssize_t buffer_size
    cdef bytearray buffer_bytes
    cdef Scanner scanner
    cdef object parser
    cdef object frames
    cdef Py_ssize_t stall_limit
    cdef bytes url
    cdef list headers
    cdef list trailers
    cdef bint expect
    cdef bint in_head
    cdef bint advanced
    cdef Py_ssize_t stalled
    cdef Py_ssize_t head_size
    cdef list hosts
    cdef bytes content_type
    cdef bytes line
    cdef list codings
    cdef bint keep_option
    cdef unsigned long long content_length  # llhttp refuses more than 64 bits
    cdef long long body_size
    cdef bint in_message
    cdef bint followed
    cdef bint in_read
    cdef unsigned long long scanned_left
    cdef CRequest req
    cdef bint dispatched

    cdef cut(self)

    cdef lost(self, gone)

    @cython.locals(done=Py_ssize_t, boundary=bint)
    cdef read(self, Py_ssize_t nbytes)

    @cython.locals(scanner=Scanner, pos=Py_ssize_t, size=Py_ssize_t, start=Py_ssize_t)
    cdef Py_ssize_t scan(self, Py_ssize_t nbytes) except -1

    @cython.locals(size=Py_ssize_t)
    cdef Py_ssize_t scanned_body(self, Py_ssize_t pos, Py_ssize_t end) except -1

    cdef on_trailer(self, bytes name, bytes value)

    cdef refused(self, exc)

    cdef callback_failed(self, exc)

    cdef guard_stall(self, Py_ssize_t nbytes)

    @cython.locals(req=CRequest)
    cdef open(self, str method, bytes url, headers, bint http10, bint keep_alive, bint expect)

    cdef body(self, bytes body)

    @cython.locals(req=CRequest)
    cdef message_done(self)

    @cython.locals(req=CRequest)
    cdef fail(self, int status, str reason)

    cdef bytes refused_line(self)


@cython.final
cdef class _Queue:
    cdef _Connection conn
    cdef object report
    cdef _Writer writer
    cdef _Lifecycle life
    cdef object app
    cdef bint launches
    cdef int max_pipeline
    cdef object refusals
    cdef bint debug
    cdef list pending
    cdef CRequest upgrade
    cdef bytes tail

    cdef cut(self)

    @cython.locals(slot=_Slot)
    cdef dispatch(self, CRequest req)

    cdef inline call(self, CRequest req)

    cdef launch(self, CRequest req)

    @cython.locals(landing=Landing)
    cdef settle(self, _Slot slot, result)

    cdef enqueue(self, _Slot slot)

    cdef bint handler_done(self, _Slot slot, task) except -1

    @cython.locals(slot=_Slot, req=CRequest, writer=_Writer)
    cdef send_ready(self)

    cdef stream_sent(self)

    cdef upgrade_asked(self, CRequest req)

    cdef upgrading(self, bytes tail)

    cdef more_tail(self, data)

    @cython.locals(slot=_Slot)
    cdef switch_due(self)

    @cython.locals(slot=_Slot, life=_Lifecycle)
    cdef fail(self, int status, str reason, CRequest req, bint dispatched, bytes line)

    @cython.locals(slot=_Slot)
    cdef abandon(self, gone)

    @cython.locals(first=_Slot)
    cdef bint first_is(self, CRequest req) except -1


@cython.final
cdef class _Writer:
    cdef _Connection conn
    cdef _Lifecycle life
    cdef object transport
    cdef readonly Output out  # readable for tests: what it holds between answers
    cdef ResponseFields response_parts
    cdef bint serializing
    cdef int paused
    cdef bint write_paused
    cdef object room_waiter
    cdef object stream_task
    cdef object access_log
    cdef dict started
    cdef int omit
    cdef bytes extra

    cdef cut(self)

    cdef attach(self, transport)

    @cython.locals(
        parts=ResponseFields, out=Output, status=int, flags=int, field_lines=bytes,
        body=bytes, keep=bint, has_body=bint, send_body=bint, chunked=bint,
        inline_body=bint, line=bytes, block=bytes, extra=bytes, cut=Py_ssize_t,
    )
    cdef respond(self, CRequest req, response, bint owed_after)

    cdef bint stream_ended(self) except -1

    @cython.locals(out=Output, start=Py_ssize_t)
    cdef bytes serialize(self, CRequest req, response)

    cdef timed(self, CRequest req)

    @cython.locals(started=dict, parts=ResponseFields)
    cdef log_access(self, CRequest req, int status, int flags)

    @cython.locals(started=dict)
    cdef log_answer(self, CRequest req, int status, client, bytes line)

    cdef continue_(self, CRequest req)

    cdef write(self, bytes data)

    cdef write_out(self)

    cdef int spill(self) except -1

    cdef pause(self, int reason)

    cdef unpause(self, int reason)

    cdef pause_writing(self)

    cdef resume_writing(self)

    cdef room(self)

    cdef gone(self, exc)


@cython.final
cdef class _Lifecycle:
    cdef Py_ssize_t idle_limit
    cdef Py_ssize_t head_limit
    cdef Py_ssize_t body_limit
    cdef Py_ssize_t write_limit
    cdef Py_ssize_t linger_limit
    cdef int state
    cdef bint draining
    cdef bint half_close
    cdef bint reading
    cdef Py_ssize_t requests
    cdef Py_ssize_t head_ticks
    cdef Py_ssize_t body_ticks
    cdef bint body_progress
    cdef Py_ssize_t linger_ticks
    cdef Py_ssize_t write_ticks
    cdef Py_ssize_t idle
    cdef Py_ssize_t seen

    cdef void to(self, int state) noexcept

    @cython.locals(state=int)
    cdef bint through(self, bint owed) noexcept

    cdef void drain_on_close(self) noexcept

    cdef void begin_shutdown(self) noexcept

    cdef void head_begun(self) noexcept

    cdef void head_done(self) noexcept

    cdef void opened(self) noexcept

    cdef void body_came(self) noexcept

    cdef void read_done(self) noexcept

    cdef bint recently_busy(self) noexcept

    cdef void unpark(self, Py_ssize_t left) noexcept

    cdef bint close(self, transport) except -1

    cdef Py_ssize_t tick(self, transport, bint write_paused, bint in_head, bint owed) except? -1


cdef class _Connection:
    cdef readonly object server  # read by the WebSocket handshake (websocket.py)
    cdef public object client
    cdef public str scheme
    cdef public Py_ssize_t sweep_due
    cdef public Py_ssize_t sweep_slot
    cdef public bint parked
    cdef bint flush_due
    cdef _Shared _shared
    cdef readonly _Reader _reader  # httptools' callback target (readable for tests)
    cdef _Queue _queue
    cdef readonly _Writer _writer  # readable for tests
    cdef _Lifecycle _life

    # Inline: never overridden (HttpProtocol only adds the asyncio base), so each call
    # is a direct C call, not one through the vtable.
    @cython.locals(writer=_Writer, life=_Lifecycle)
    cdef inline _flush(self)

    cdef inline _deliver(self)

    @cython.locals(queue=_Queue, writer=_Writer)
    cdef inline bint _switched(self) except -1

    @cython.locals(flushing=list)
    cdef inline _flush_soon(self)

    cdef inline _flush_later(self)
