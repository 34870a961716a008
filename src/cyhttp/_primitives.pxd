# cython: language_level=3
# The compiled primitives of the protocol (see _primitives.pyx); cimported by _protocol_c,
# the compiled build of _protocol.py. _primitives_py.py holds their pure-Python twins.

cimport cython
from cpython.object cimport PyObject
from cpython.pythread cimport PyThread_type_lock
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.string cimport memchr, memcpy

# The request accessors, through here as their pure twins are through _primitives_py.
from ._fields cimport decode_path, new_headers, new_query
from ._head cimport Field, Head, lower_name, next_field, read_fields
from ._head cimport scan as scan_head
from ._response cimport Response


@cython.final
cdef class Output:
    cdef char* _data
    cdef Py_ssize_t _size
    cdef Py_ssize_t _cap

    cdef int reserve(self, Py_ssize_t size) except -1
    cdef bytes take(self)
    cdef bytes since(self, Py_ssize_t start)
    cdef void truncate(self, Py_ssize_t size) noexcept
    cdef void _give_back(self) noexcept

    # The put* methods write into room a reserve() made.
    cdef inline void put(self, bytes data) noexcept:
        memcpy(self._data + self._size, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        self._size += PyBytes_GET_SIZE(data)

    cdef inline void put_part(self, bytes data, Py_ssize_t start, Py_ssize_t stop) noexcept:
        memcpy(self._data + self._size, PyBytes_AS_STRING(data) + start, stop - start)
        self._size += stop - start

    cdef inline void put_length(self, Py_ssize_t value) noexcept:
        """The Content-Length line for *value*."""
        cdef char digits[24]
        cdef int pos = 24
        while True:
            pos -= 1
            digits[pos] = <char>(48 + value % 10)
            value //= 10
            if value == 0:
                break
        memcpy(self._data + self._size, b"Content-Length: ", 16)
        memcpy(self._data + self._size + 16, digits + pos, 24 - pos)
        self._size += 16 + 24 - pos
        memcpy(self._data + self._size, b"\r\n", 2)
        self._size += 2

    cdef inline void put_crlf(self) noexcept:
        memcpy(self._data + self._size, b"\r\n", 2)
        self._size += 2

    cdef inline int write(self, bytes data) except -1:
        self.reserve(PyBytes_GET_SIZE(data))
        self.put(data)
        return 0

    cdef inline Py_ssize_t size(self) noexcept:
        return self._size


@cython.final
cdef class Scanner:
    cdef object _buffer             # holds the export _data points into
    cdef const unsigned char* _data
    cdef tuple _methods             # the names, by _head's METHOD_* index
    cdef Py_ssize_t _max_url
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_headers
    cdef unsigned long long _max_body
    cdef Head head                  # what the last successful scan() found

    cdef inline Py_ssize_t scan(self, Py_ssize_t pos, Py_ssize_t end) noexcept:
        """The size of the plain head at *pos* (in ``head``), or 0: httptools reads it."""
        cdef Head* head = &self.head
        cdef Py_ssize_t size = scan_head(self._data + pos, end - pos, head)
        if size and (
            head.target_len <= self._max_url
            and head.field_bytes <= self._max_head
            and head.fields <= self._max_headers
            and head.length <= self._max_body
            # Requests that end the connection and Host errors take httptools' path.
            and (head.keep_alive if head.http10 else not head.close)
            and (head.hosts == 1 or (head.hosts == 0 and head.http10))
        ):
            return size
        return 0

    cdef inline str method(self):
        return <str>PyTuple_GET_ITEM(self._methods, self.head.method)

    cdef inline bytes take(self, Py_ssize_t start, Py_ssize_t stop):
        return PyBytes_FromStringAndSize(<const char*>self._data + start, stop - start)


@cython.final
cdef class ResponseFields:
    cdef int status
    cdef int flags
    cdef bytes head
    cdef bytes body                 # None for a streaming response
    cdef long long length           # the declared Content-Length (-1: none)

    cdef int _read_other(self, response) except -1

    cdef inline int read(self, response) except -1:
        cdef Response plain
        if type(response) is Response:
            # C fields, read-only and checked when built; status is 0 if __init__ never ran.
            plain = <Response>response
            self.status = plain.status
            self.flags = plain._flags
            self.head = plain._head
            self.body = plain.body
            self.length = plain._length
            return self.status
        return self._read_other(response)


@cython.final
cdef class Wake:
    cdef PyThread_type_lock lock


@cython.final
cdef class Mutex:
    cdef PyThread_type_lock lock

    cpdef bint acquire(self) except -1

    cpdef release(self)


cdef class Launcher:
    cdef launch(self, req)


cdef class Landing:
    cdef public object answer
    cdef public object on_done
    cdef public object slot


cdef inline bint is_name(bytes name, bytes lower) noexcept:
    cdef const unsigned char* a = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(lower)
    cdef Py_ssize_t i
    for i in range(PyBytes_GET_SIZE(lower)):
        if (a[i] | 0x20) != b[i]:  # exact for letters and '-'; names are tokens (llhttp)
            return False
    return True


cdef bint _is_other_response(obj)


cdef inline bint is_response(obj):
    # Exact types first: isinstance() against a tuple takes a slow path for misses.
    return type(obj) is Response or _is_other_response(obj)

cdef bint is_streaming(obj)
cdef bint is_future(obj)
cdef object settled(task)
cdef list asgi_headers(fields)
cdef struct _Known:
    const char* name  # in lower case; NULL: an empty slot
    Py_ssize_t size
    PyObject* key


@cython.final
cdef class FieldKeys:
    cdef _Known* table
    cdef size_t mask
    cdef list owned

    cdef str find(self, const char* name, Py_ssize_t size)


cdef tuple wsgi_fields(fields, dict env, FieldKeys known, dict keys, key_of, str host_key,
                       str for_key, str proto_key, str last_host)
cdef tuple split_target(bytes target)
cdef dict roomy_copy(dict items, Py_ssize_t room)
cdef object call_handler(app, req)
cdef bytes date_block()
