# cython: language_level=3
# The strict request-head scanner, cimported by the compiled core (see _head.pyx).

cdef enum:
    MAX_FIELDS = 64     # heads with more header fields go to httptools

# Index of a request method in the core's table, in this order.
cdef enum:
    METHOD_GET
    METHOD_HEAD
    METHOD_POST
    METHOD_PUT
    METHOD_DELETE
    METHOD_OPTIONS
    METHOD_PATCH

cdef struct Field:
    Py_ssize_t name
    Py_ssize_t name_len
    Py_ssize_t value
    Py_ssize_t value_len

cdef struct Head:
    int method
    Py_ssize_t target           # offset of the request target
    Py_ssize_t target_len
    bint http10
    int fields
    Field field[MAX_FIELDS]     # offsets, from the start of the head
    Py_ssize_t field_bytes      # sum of name + value + 4 per field, as the core limits them
    int hosts
    bint close                  # Connection: close
    bint keep_alive             # Connection: keep-alive
    bint expect                 # the last Expect field is 100-continue
    unsigned long long length   # Content-Length, 0 when absent

cdef Py_ssize_t scan(const unsigned char* data, Py_ssize_t size, Head* head) noexcept nogil
