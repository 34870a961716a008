# cython: language_level=3
# The C types of the compiled build of request.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _request, with these declarations). Nothing here is logic.
# cimported by the compiled protocol and ASGI layer, which call the core's side in C.

cimport cython

cdef Py_ssize_t BODY_HIGH_WATER
cdef str GET


@cython.final  # its free list is request.py's decorator: Cython takes that one from the source
cdef class Request:
    cdef readonly str method
    cdef readonly bytes raw_path
    cdef readonly str http_version
    cdef readonly bint keep_alive
    cdef object _conn
    cdef object _fields         # (name, value) pairs; the scanner's field lines (bytes) until used
    cdef bint _is_head          # method is HEAD: no body in the answer
    cdef bint _is_http10        # no chunked answers, explicit keep-alive
    cdef object _headers
    cdef object _path
    cdef object _query
    cdef object _cookies
    cdef list _chunks
    cdef Py_ssize_t _buffered
    cdef bytes _body
    cdef bint _body_done
    cdef bint _want_all
    cdef object _expect
    cdef object _waiter
    cdef object _error
    cdef list _trailers

    cdef void _init(self, conn, str method, bytes raw_path, fields, bint http10,
                    bint keep_alive) noexcept

    cdef bint _feed(self, bytes data) except -1

    cdef _finish(self)

    @cython.locals(chunks=list)
    cpdef bytes _release(self)  # cpdef: the writer's stream_done callback calls it from Python

    cdef _abort(self, exc)

    cdef _wake(self)


@cython.locals(req=Request)
cdef Request new_request(conn, str method, bytes raw_path, fields, bint http10, bint keep_alive)

cpdef object connection_of(Request req)  # cpdef: websocket.py, plain Python, calls it
