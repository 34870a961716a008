# cython: language_level=3
# Compiled Response and StreamingResponse; cimported by _primitives, which reads
# their C fields, and by the compiled protocol.

cdef class Response:
    cdef readonly int status        # 0 only when __init__ never ran: the core answers 500
    cdef readonly bytes body
    cdef readonly bytes _head       # the encoded header lines
    cdef readonly int _flags        # _wire.FLAG_* bits
    cdef readonly long long _length  # the declared Content-Length (-1: none)


cdef class StreamingResponse:
    cdef readonly int status
    cdef readonly object content
    cdef readonly bytes _head
    cdef readonly int _flags
    cdef readonly long long _length


cdef Response new_response(body, status, headers)
