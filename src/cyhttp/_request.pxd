# cython: language_level=3
# The compiled Request; cimported by the compiled protocol, which reads and sets its C fields.

cdef class Request:
    cdef readonly str method
    cdef readonly bytes raw_path
    cdef readonly str http_version
    cdef readonly bint keep_alive
    cdef object _fields         # (name, value) pairs; the scanner's field lines (bytes) until used
    cdef bint _is_head          # method is HEAD: no body in the answer
    cdef bint _is_http10        # no chunked answers, explicit keep-alive
    cdef object _headers
    cdef object _path
    cdef object _query
    cdef object _cookies
    # Read and written by the shared body functions in cyhttp.request.
    cdef public object _conn
    cdef public object _chunks
    cdef public Py_ssize_t _buffered
    cdef public object _body
    cdef public bint _body_done
    cdef public bint _want_all
    cdef public object _expect
    cdef public object _waiter
    cdef public object _error
    cdef public object _trailers

    cdef bint _feed(self, bytes data) except -1
    cdef _finish(self)
    cpdef bytes _release(self)
    cdef _abort(self, exc)


cdef Request new_request(conn, str method, bytes raw_path, fields, bint http10, bint keep_alive)
