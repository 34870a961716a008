# cython: language_level=3
"""The strict request-head scanner of the compiled core.

httptools reports a request through five or more Python-level callbacks, each
creating bytes objects; for the short heads that make up nearly all traffic that
costs more than everything else the core does. So the core first offers each
head to ``scan``, which accepts only a deliberately narrow, unambiguous subset
of HTTP/1.1 and reads it in one pass with no Python objects:

* ``METHOD SP origin-form SP HTTP/1.x CRLF``, a method from the core's table,
  a target of RFC 3986 path and query characters only;
* field lines ``token ":" OWS value CRLF``, the value visible ASCII, spaces and
  tabs (llhttp drops the leading ones and keeps the rest);
* Content-Length as at most 18 digits, once; Connection as exactly ``close`` or
  ``keep-alive``, once; Content-Type once; no Transfer-Encoding, Upgrade or
  Proxy-Connection; Host as a name of letters, digits, ``-._~`` and an optional
  ``:port``.

Anything else, including a head not complete in the bytes given, returns 0 and
the core hands the bytes to httptools, which decides as it always did (and
answers 400 where it must). The subset is chosen so that each head it accepts
means exactly what llhttp, in its strict mode, would make of it; the
differential fuzz tests hold the compiled core to the pure-Python one, which
only ever uses httptools.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

from ._wire import SCANNED_METHODS, TOKEN_CHARS

cdef unsigned char TARGET[256]    # RFC 3986 pchar, "/" and "?"
cdef unsigned char VALUE[256]     # visible ASCII, SP and HTAB
cdef unsigned char HOST[256]      # bit 1: RFC 3986 unreserved (a plain name); bit 2: a digit


cdef void _fill(unsigned char* table, bytes chars) noexcept:
    cdef unsigned char c
    for c in chars:
        table[c] = 1


cdef bytes _ALNUM = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_fill(TOKEN, TOKEN_CHARS)
_fill(TARGET, _ALNUM + b"-._~!$&'()*+,;=:@/?%")
_fill(VALUE, bytes(range(0x21, 0x7F)) + b" \t")
_fill(HOST, _ALNUM + b"-._~")
cdef unsigned char _digit
for _digit in b"0123456789":
    HOST[_digit] = 3  # 1: in a name, 2: in a port
cdef int _c
for _c in range(256):
    LOWER[_c] = _c + 32 if 65 <= _c <= 90 else _c


def tables():
    """The shared C tables as Python values, for the test that holds them to the Python
    definitions: ``token`` and ``lower`` (each byte's entry), ``methods`` (the index
    ``scan`` gives each of ``SCANNED_METHODS``)."""
    cdef Py_ssize_t end
    cdef bytes line
    methods = []
    for name in SCANNED_METHODS:
        line = name.encode("ascii") + b" /       "  # _method reads 8 bytes
        methods.append(_method(line, &end))
    return {
        "token": bytes([TOKEN[i] for i in range(256)]),
        "lower": bytes([LOWER[i] for i in range(256)]),
        "methods": methods,
    }


cdef inline bint _plain_host(const unsigned char* v, Py_ssize_t size) noexcept nogil:
    """Whether a Host value is ``name [":" digits]`` of unreserved characters."""
    cdef const unsigned char* end = v + size
    while v < end and HOST[v[0]] & 1:  # the name
        v += 1
    if v < end and v[0] == b":":
        v += 1
        while v < end and HOST[v[0]] & 2:  # the port
            v += 1
    return v == end


cdef inline Py_ssize_t _value_end(const unsigned char* p, Py_ssize_t i,
                                  Py_ssize_t n) noexcept nogil:
    """Offset of the first byte from *i* on that cannot be in a field value."""
    # Values are the longest part of a head: eight bytes at a time, with the
    # table only for a word holding a control byte (HTAB is one), DEL or non-ASCII.
    cdef uint64_t word
    cdef uint64_t ones = 0x0101010101010101
    cdef uint64_t highs = 0x8080808080808080
    while i + 8 <= n:
        memcpy(&word, p + i, 8)
        # A high bit: below 0x20 after "- 0x20", non-ASCII as is, 0x7F after "+ 1".
        if ((word - ones * 0x20) | word | (word + ones)) & highs:
            break
        i += 8
    while i < n and VALUE[p[i]]:
        i += 1
    return i


cdef inline bint _same(const unsigned char* data, Py_ssize_t size, const char* lower,
                       Py_ssize_t lower_size) noexcept nogil:
    """ASCII case-insensitive equality, exact for the token and value characters scanned."""
    cdef Py_ssize_t i
    if size != lower_size:
        return False
    for i in range(size):
        if (data[i] | 0x20) != <unsigned char>lower[i]:
            return False
    return True


cdef inline bint _word(const unsigned char* p, const char* word, Py_ssize_t size,
                       Py_ssize_t* end) noexcept nogil:
    if memcmp(p, word, size) != 0:
        return False
    end[0] = size
    return True


cdef inline int _method(const unsigned char* p, Py_ssize_t* end) noexcept nogil:
    """The method at *p* (8 readable bytes) and, in *end*, the offset past its space; or -1."""
    if p[0] == b"G":
        return METHOD_GET if _word(p, b"GET ", 4, end) else -1
    if p[0] == b"P":
        if _word(p, b"POST ", 5, end):
            return METHOD_POST
        if _word(p, b"PUT ", 4, end):
            return METHOD_PUT
        return METHOD_PATCH if _word(p, b"PATCH ", 6, end) else -1
    if p[0] == b"H":
        return METHOD_HEAD if _word(p, b"HEAD ", 5, end) else -1
    if p[0] == b"D":
        return METHOD_DELETE if _word(p, b"DELETE ", 7, end) else -1
    if p[0] == b"O":
        return METHOD_OPTIONS if _word(p, b"OPTIONS ", 8, end) else -1
    return -1


cdef Py_ssize_t scan(const unsigned char* p, Py_ssize_t n, Head* h) noexcept nogil:
    """Size of the complete, plain request head at *p* (filling *h*), or 0 for httptools."""
    cdef Py_ssize_t i, k, start, name, name_len, value_len
    cdef const unsigned char* v
    cdef bint connection = False
    cdef bint length = False
    cdef bint content_type = False
    cdef int method
    if n < 18:  # shorter than "GET / HTTP/1.1\r\n\r\n"
        return 0
    method = _method(p, &i)
    if method < 0:
        return 0
    h.method = method
    if p[i] != b"/":
        return 0
    start = i
    while i < n and TARGET[p[i]]:
        i += 1
    if i + 11 > n or p[i] != b" " or memcmp(p + i + 1, b"HTTP/1.", 7) != 0:
        return 0
    h.target = start
    h.target_len = i - start
    i += 8
    if p[i] == b"1":
        h.http10 = False
    elif p[i] == b"0":
        h.http10 = True
    else:
        return 0
    if p[i + 1] != b"\r" or p[i + 2] != b"\n":
        return 0
    i += 3
    h.lines = i
    h.fields = h.hosts = 0
    h.field_bytes = 0
    h.close = h.keep_alive = h.expect = False
    h.length = 0
    while True:
        if i + 2 > n:
            return 0
        if p[i] == b"\r":
            return i + 2 if p[i + 1] == b"\n" else 0
        name = i
        while i < n and TOKEN[p[i]]:
            i += 1
        name_len = i - name
        if i >= n or p[i] != b":" or name_len == 0:
            return 0
        i += 1
        while i < n and (p[i] == b" " or p[i] == b"\t"):
            i += 1
        start = i
        i = _value_end(p, i, n)
        value_len = i - start
        if i + 2 > n or p[i] != b"\r" or p[i + 1] != b"\n":
            return 0
        i += 2
        h.fields += 1
        h.field_bytes += name_len + value_len + 4
        # The fields llhttp itself acts on, and the ones the core does.
        v = p + start
        if name_len == 4:
            if _same(p + name, 4, b"host", 4):
                if not _plain_host(v, value_len):
                    return 0
                h.hosts += 1
        elif name_len == 6:
            if _same(p + name, 6, b"expect", 6):
                h.expect = _same(v, value_len, b"100-continue", 12)
        elif name_len == 7:
            if _same(p + name, 7, b"upgrade", 7):
                return 0
        elif name_len == 10:
            if _same(p + name, 10, b"connection", 10):
                if connection:
                    return 0
                connection = True
                if _same(v, value_len, b"close", 5):
                    h.close = True
                elif _same(v, value_len, b"keep-alive", 10):
                    h.keep_alive = True
                else:
                    return 0
        elif name_len == 12:
            if _same(p + name, 12, b"content-type", 12):
                if content_type:
                    return 0  # repeated: the core compares the values on httptools' path
                content_type = True
        elif name_len == 14:
            if _same(p + name, 14, b"content-length", 14):
                if length or value_len == 0 or value_len > 18:
                    return 0
                length = True
                for k in range(start, start + value_len):
                    if p[k] < b"0" or p[k] > b"9":
                        return 0
                    h.length = h.length * 10 + (p[k] - c'0')
        elif name_len == 16:
            if _same(p + name, 16, b"proxy-connection", 16):
                return 0
        elif name_len == 17:
            if _same(p + name, 17, b"transfer-encoding", 17):
                return 0


cdef bytes lower_name(const char* name, Py_ssize_t size):
    """*name* in ASCII lower case (as an ASGI scope gives header names)."""
    cdef bytes lowered = PyBytes_FromStringAndSize(NULL, size)
    cdef char* out = PyBytes_AS_STRING(lowered)
    cdef Py_ssize_t i
    for i in range(size):
        out[i] = <char>LOWER[<unsigned char>name[i]]
    return lowered


cdef list read_fields(bytes lines, bint lower=False):
    """The ``(name, value)`` pairs of field lines ``scan`` accepted, values without the
    whitespace around them, as the core gives them for httptools' too; with *lower*,
    names in lower case."""
    cdef const char* p = PyBytes_AS_STRING(lines)
    cdef const char* end = p + PyBytes_GET_SIZE(lines)
    cdef Field field
    cdef list fields = []
    while p < end:
        p = next_field(p, end, &field)
        fields.append((
            lower_name(field.name, field.name_size) if lower
            else PyBytes_FromStringAndSize(field.name, field.name_size),
            PyBytes_FromStringAndSize(field.value, field.value_size),
        ))
    return fields
