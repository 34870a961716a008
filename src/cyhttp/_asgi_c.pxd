# cython: language_level=3
# The C types of the compiled build of _asgi.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _asgi_c, with these declarations). Nothing here is logic.

cimport cython

# The compiled Request as CRequest: _asgi.py names the pure class for type checkers.
from ._request cimport Request as CRequest

cdef dict ASGI_VERSIONS
cdef str PATHSEND
cdef tuple SCOPE_KEYS
cdef int NOTHING, STARTED, STREAMING, COMPLETE, FAILED
cdef int FLAG_CONTENT_LENGTH
cdef Py_ssize_t STREAM_HIGH_WATER
cdef tuple NOT_FORWARDED
cdef bint EAGER_START


@cython.final
@cython.freelist(16)
cdef class _Completed:
    cdef object value


cdef _Completed SENT


cdef dict disconnect()


@cython.locals(name=bytes, value=bytes, hops=list)
cpdef tuple forwarded_by(list fields, proxies)  # cpdef: the WSGI layer calls it too


@cython.final
cdef class _Carrier:
    cdef object loop
    cdef object handoff
    cdef object task
    cdef bint finished
    cdef object error
    cdef object yielded

    cdef hand_over(self, coro, ctx)


@cython.final
cdef class Asgi:
    cdef readonly object app
    cdef readonly str root_path
    cdef bytes raw_root
    cdef public dict state
    cdef public object server
    cdef public object loop
    cdef readonly set running
    cdef _Carrier carrier
    cdef dict constant
    cdef object proxies
    cdef object peer
    cdef bint peer_trusted

    @cython.locals(raw=bytes, scope=dict)
    cpdef dict scope(self, CRequest req)  # the WebSocket scope starts from it (_asgi_ws)

    cdef forwarded(self, dict scope, headers, proxies)


@cython.final
@cython.freelist(16)
cdef class _Exchange:
    cdef CRequest req
    cdef int state
    cdef int status
    cdef object headers
    cdef object response
    cdef bint body_left
    cdef bint gone
    cdef str problem
    cdef object head
    cdef object chunks
    cdef Py_ssize_t buffered
    cdef Py_ssize_t left
    cdef object more
    cdef object room
    cdef object over

    cdef str after(self)

    cdef respond(self, bytes body)

    cdef mismatched(self, bytes body)

    cdef stream(self, bytes body, bint last)

    cdef send_file(self, str path)

    cdef give(self, response)

    cdef finish(self)

    cdef bad(self, str problem)

    cdef wake_writer(self)

    cdef suspended(self, task)

    cdef ended(self, exc)

    cdef client_gone(self)
