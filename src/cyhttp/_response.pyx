# cython: language_level=3, binding=False
"""Compiled ``Response`` and ``StreamingResponse``: the same interface, checks and errors
as the pure-Python classes of ``cyhttp.response``, with the header block encoded in C.

Handlers build a response per request, so construction is on the hot path: a
dict of ASCII ``str`` headers is read with ``PyDict_Next`` and the strings'
own bytes, each name checked against the token table and each value for CR,
LF and NUL, straight into one buffer; a content type alone is looked up in a
small cache of encoded lines. The fields are C-typed and read-only, so the
core reads them without checking them again. Errors take the pure-Python
code's path, so that both implementations raise the same exception with the
same message.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from libc.string cimport memcpy

from ._head cimport LOWER, TOKEN

from collections.abc import Mapping

from . import _wire, response as _pure

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)
    bint PyUnicode_IS_COMPACT_ASCII(object text)
    void* PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    long PyLong_AsLongAndOverflow(object value, int* overflow) noexcept

cdef int FLAG_CONTENT_LENGTH = _wire.FLAG_CONTENT_LENGTH
cdef int FLAG_CLOSE = _wire.FLAG_CLOSE
cdef int FLAG_DATE = _wire.FLAG_DATE
cdef int FLAG_SERVER = _wire.FLAG_SERVER
# Outside every FLAG_* bit: the fast path met a field it leaves to the pure code.
cdef int REDO = 1 << 16

cdef dict _CONTENT_TYPES = {}     # content type -> its encoded line
cdef Py_ssize_t CONTENT_TYPES_MAX = 64
# Handlers pass the same constant again and again: checked by identity before the dict.
cdef object _last_content_type = None
cdef bytes _last_content_type_line = None


cdef struct Out:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity
    char* heap          # NULL while data is the caller's stack buffer


cdef inline int _reserve(Out* out, Py_ssize_t size) except -1:
    if out.size + size > out.capacity:
        _grow(out, out.size + size)
    return 0


cdef int _grow(Out* out, Py_ssize_t need) except -1:
    cdef Py_ssize_t capacity
    cdef char* grown
    if need > out.capacity:
        capacity = out.capacity * 2
        while capacity < need:
            capacity *= 2
        grown = <char*>PyMem_Realloc(out.heap, capacity)
        if grown == NULL:
            raise MemoryError()
        if out.heap == NULL:
            memcpy(grown, out.data, out.size)
        out.heap = out.data = grown
        out.capacity = capacity
    return 0


cdef inline void _copy(Out* out, const char* data, Py_ssize_t size) noexcept:
    """Append *size* bytes, room for which was reserved."""
    memcpy(out.data + out.size, data, size)
    out.size += size


cdef inline int _put(Out* out, const char* data, Py_ssize_t size) except -1:
    _reserve(out, size)
    _copy(out, data, size)
    return 0


cdef inline const char* _text(obj, Py_ssize_t* size) noexcept:
    """The bytes of an ASCII ``str`` or of ``bytes``; NULL for anything else."""
    if type(obj) is str and PyUnicode_IS_COMPACT_ASCII(obj):
        # A compact ASCII string's characters are its bytes, in place.
        size[0] = PyUnicode_GET_LENGTH(obj)
        return <const char*>PyUnicode_DATA(obj)
    if type(obj) is bytes:
        size[0] = PyBytes_GET_SIZE(obj)
        return PyBytes_AS_STRING(obj)
    return NULL


cdef inline bint _clean_value(const char* data, Py_ssize_t size) noexcept:
    cdef Py_ssize_t i
    cdef char c
    for i in range(size):
        c = data[i]
        if c == b"\r" or c == b"\n" or c == 0:
            return False
    return True


cdef inline bint _token(const char* data, Py_ssize_t size) noexcept:
    cdef Py_ssize_t i
    if size == 0:
        return False
    for i in range(size):
        if not TOKEN[<unsigned char>data[i]]:
            return False
    return True


cdef inline bint _is(const char* name, Py_ssize_t size, const char* lower,
                     Py_ssize_t length) noexcept:
    cdef Py_ssize_t i
    if size != length:
        return False
    for i in range(size):
        if LOWER[<unsigned char>name[i]] != <unsigned char>lower[i]:
            return False
    return True


cdef inline long long _digits(const char* data, Py_ssize_t size) noexcept:
    """The value of a Content-Length of 1 to 18 ASCII digits; -1 for anything else."""
    cdef long long value = 0
    cdef Py_ssize_t i
    if size == 0 or size > 18:
        return -1
    for i in range(size):
        if not b"0" <= data[i] <= b"9":
            return -1
        value = value * 10 + (data[i] - 48)
    return value


cdef inline bint _lists_close(const char* data, Py_ssize_t size) noexcept:
    """Whether a Connection value's comma-separated options include ``close``."""
    cdef Py_ssize_t start = 0, end, i
    for i in range(size + 1):
        if i == size or data[i] == b",":
            end = i
            while start < end and (data[start] == b" " or data[start] == b"\t"):
                start += 1
            while end > start and (data[end - 1] == b" " or data[end - 1] == b"\t"):
                end -= 1
            if _is(data + start, end - start, b"close", 5):
                return True
            start = i + 1
    return False


cdef int _field(Out* out, raw_name, raw_value, int* flags, long long* declared) except -1:
    """Append one ``name: value`` line (or only set a flag); anything unusual sets REDO,
    and the pure code encodes the whole block instead (or raises its error)."""
    cdef Py_ssize_t name_size, value_size
    cdef const char* name = _text(raw_name, &name_size)
    cdef const char* value = _text(raw_value, &value_size)
    if (name == NULL or value == NULL or not _clean_value(value, value_size)
            or not _token(name, name_size)):
        # Non-ASCII text, bytearray, a bad character.
        flags[0] |= REDO
        return 0
    if name_size == 4 and _is(name, 4, b"date", 4):
        flags[0] |= FLAG_DATE
    elif name_size == 6 and _is(name, 6, b"server", 6):
        flags[0] |= FLAG_SERVER
    elif name_size == 10 and _is(name, 10, b"connection", 10):
        if _lists_close(value, value_size):
            flags[0] |= FLAG_CLOSE
        return 0  # the core writes the Connection header itself
    elif name_size == 14 and _is(name, 14, b"content-length", 14):
        if flags[0] & FLAG_CONTENT_LENGTH:  # a second one
            flags[0] |= REDO
            return 0
        declared[0] = _digits(value, value_size)  # the caller checks it against the body
        if declared[0] < 0:
            flags[0] |= REDO
            return 0
        flags[0] |= FLAG_CONTENT_LENGTH
    elif name_size == 17 and _is(name, 17, b"transfer-encoding", 17):
        flags[0] |= REDO  # it decides whether the Content-Length stays
        return 0
    _reserve(out, name_size + value_size + 4)
    _copy(out, name, name_size)
    _copy(out, b": ", 2)
    _copy(out, value, value_size)
    _copy(out, b"\r\n", 2)
    return 0


cdef bytes _content_type_line(content_type):
    global _last_content_type, _last_content_type_line
    if content_type is _last_content_type:
        return _last_content_type_line
    line = _CONTENT_TYPES.get(content_type) if isinstance(content_type, (str, bytes)) else None
    if line is None:
        line, _, _ = _wire.encode_headers(None, content_type)
        if isinstance(content_type, (str, bytes)) and len(_CONTENT_TYPES) < CONTENT_TYPES_MAX:
            _CONTENT_TYPES[content_type] = line
    if type(content_type) is str or type(content_type) is bytes:  # immutable: safe to keep
        _last_content_type = content_type
        _last_content_type_line = line
    return <bytes>line


cdef inline bint _no_body(int status) noexcept:
    """``_wire.no_body``: 1xx, 204 and 304 answers have no body."""
    return status < 200 or status == 204 or status == 304


cdef bytes _encode(headers, content_type, int status, int* flags, long long* declared):
    """The header block of *headers* and *content_type* for a *status* answer, their
    FLAG_* bits in *flags* and the Content-Length they declare in *declared*."""
    cdef char stack[512]
    cdef Out out
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* item
    out.data = stack
    out.size = 0
    out.capacity = sizeof(stack)
    out.heap = NULL
    try:
        if content_type is not None:
            line = _content_type_line(content_type)
            _put(&out, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))
        if type(headers) is dict:
            while PyDict_Next(headers, &pos, &key, &item):
                _field(&out, <object>key, <object>item, flags, declared)
        elif type(headers) is list or type(headers) is tuple:
            for pair in headers:  # ASGI's and most handlers': a list of 2-tuples
                if (type(pair) is tuple or type(pair) is list) and len(pair) == 2:
                    _field(&out, pair[0], pair[1], flags, declared)
                else:
                    name, value = _wire.header_pair(pair)  # raises its error
                    _field(&out, name, value, flags, declared)
        else:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for pair in items:
                name, value = _wire.header_pair(pair)
                _field(&out, name, value, flags, declared)
        if flags[0] & REDO or (flags[0] & FLAG_CONTENT_LENGTH and _no_body(status)):
            head, flags[0], declared[0] = _wire.encode_headers(headers, content_type, status)
            return head
        return PyBytes_FromStringAndSize(out.data, out.size)
    finally:
        PyMem_Free(out.heap)


cdef int _setup(Response response, body, status, headers, content_type) except -1:
    """Fill *response* in: ``Response.__init__``'s work, which ``new_response`` does
    without a Python call."""
    cdef int flags = 0
    cdef long long declared = -1
    cdef int overflow = 0
    cdef long code = PyLong_AsLongAndOverflow(status, &overflow) if type(status) is int else 0
    if overflow or not 100 <= code <= 599:
        _pure.check_status(status)  # raises the pure class's error
    if type(body) is not bytes:
        body = _pure.body_bytes(body)
    if headers is None:
        response._head = b"" if content_type is None else _content_type_line(content_type)
    else:
        response._head = _encode(headers, content_type, <int>code, &flags, &declared)
        if flags & FLAG_CONTENT_LENGTH and PyBytes_GET_SIZE(body) and (
                declared != PyBytes_GET_SIZE(body)):
            _pure.check_length(headers, content_type, body)  # raises the pure code's error
    response.body = body
    response._flags = flags
    response._length = declared
    response.status = <int>code
    return 0


@cython.freelist(32)
cdef class Response:
    """A complete response: status, headers and a body held in memory (compiled).

    ``Content-Length``, ``Date`` and ``Server`` are added by the server. *body*
    may be bytes-like or ``str`` (encoded as UTF-8). A ``Content-Length`` given in
    *headers* is sent as is and must match the body unless the body is empty (a
    handler answering ``HEAD`` cheaply); on a 1xx, 204 or 304 it is left out.
    ``Connection`` and ``Transfer-Encoding: chunked`` are the server's: see the pure
    class. Immutable: ``status`` and ``body`` are read-only.
    """

    def __init__(self, body=b"", status=200, headers=None, content_type=None):
        _setup(self, body, status, headers, content_type)

    def __repr__(self):
        return f"<Response {self.status} {len(self.body or b'')} bytes>"


cdef Response new_response(body, status, headers):
    """``Response(body, status, headers)`` for the compiled layers: no Python call, no
    argument parsing."""
    cdef Response response = Response.__new__(Response)
    _setup(response, body, status, headers, None)
    return response


@cython.freelist(8)
cdef class StreamingResponse:
    """A response whose body comes from an async iterable of ``bytes``/``str`` chunks
    (compiled). HTTP/1.1 clients receive it chunked, HTTP/1.0 clients close-delimited;
    with a ``Content-Length`` in *headers*, exactly that many bytes, as they are."""

    def __init__(self, content, status=200, headers=None, content_type=None):
        cdef int flags = 0
        cdef long long declared = -1
        if not hasattr(content, "__aiter__"):
            raise TypeError("StreamingResponse needs an async iterable")
        self.status = _pure.check_status(status)
        self.content = content
        if headers is None and content_type is None:
            self._head = b""
        elif headers is None:
            self._head = _content_type_line(content_type)
        else:
            self._head = _encode(headers, content_type, self.status, &flags, &declared)
        self._flags = flags
        self._length = declared

    def __repr__(self):
        return f"<StreamingResponse {self.status}>"


# Either core serves either kind: registered at import, so that every module that
# cimports these classes finds them in the served types (``response.RESPONSE_TYPES``).
_pure.register(Response, StreamingResponse)
