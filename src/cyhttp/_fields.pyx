# cython: language_level=3, binding=False
"""Compiled request accessors: header lookups, the query string and the path.

A handler typically asks for one or two header fields, a query parameter and
the path. Building a whole case-insensitive mapping to answer one lookup is
what made real handlers slow, so here a lookup scans the stored field lines in
C (the head scanner's bytes, or httptools' pairs) and decodes only the value
it returns; the mapping is built only when the headers are iterated. The query
string is parsed on first use, in C, with exactly ``urllib.parse.parse_qs``'s
decoding (``keep_blank_values=True``). ``_fields_py.py`` holds the pure-Python
twins, which the tests hold these to.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memchr, memcmp

from collections.abc import Mapping

from ._head cimport LOWER, read_fields

cdef extern from "Python.h":
    object PyUnicode_DecodeLatin1(const char* data, Py_ssize_t size, const char* errors)
    object PyUnicode_DecodeUTF8(const char* data, Py_ssize_t size, const char* errors)
    bint PyUnicode_IS_ASCII(object text)
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

cdef int _c
cdef signed char HEX[256]
for _c in range(256):
    HEX[_c] = -1
for _c in range(10):
    HEX[48 + _c] = _c
for _c in range(6):
    HEX[65 + _c] = HEX[97 + _c] = 10 + _c


cdef inline bint _same_name(const char* a, Py_ssize_t size, const char* b) noexcept:
    """*a* (a field name) equals *b* (what was asked for) ignoring ASCII case."""
    cdef Py_ssize_t i
    for i in range(size):
        if LOWER[<unsigned char>a[i]] != LOWER[<unsigned char>b[i]]:
            return False
    return True


cdef inline const char* _ascii(name, Py_ssize_t* size):
    """The bytes of an ASCII ``str`` *name*; NULL for anything else (it matches no field)."""
    if type(name) is not str or not PyUnicode_IS_ASCII(name):
        return NULL
    return PyUnicode_AsUTF8AndSize(name, size)


cdef inline str _latin1(const char* data, Py_ssize_t size):
    return PyUnicode_DecodeLatin1(data, size, NULL)


# What Headers and Query share; each class keeps its own _find and _mapping, and no
# common base class (Cython gives no free list to a type that has one).

cdef inline object _first(found, default):
    return default if found is None else found


cdef inline object _present(found, name):
    if found is None:
        raise KeyError(name)
    return found


cdef inline list _all(list values, default):
    if values:
        return values
    return [] if default is None else default


cdef list _first_values(dict index):
    return [values[0] for values in index.values()]


cdef list _first_items(dict index):
    return [(name, values[0]) for name, values in index.items()]


cdef object _equal(list items, other):
    if isinstance(other, Mapping):
        return dict(items) == dict(other.items())
    return NotImplemented


@cython.final
@cython.freelist(64)
cdef class Headers:
    """Case-insensitive, multi-valued, read-only view of request headers (compiled).

    ``headers["x"]`` gives the first value, :meth:`getall` every value in order,
    and :attr:`raw` the ``(name, value)`` byte pairs as received (values without
    the whitespace around them).
    """

    def __init__(self, raw):
        self._pairs = list(raw)

    # -- lookups, in C ----------------------------------------------------

    cdef object _find(self, name, list into):
        """The first value of *name* (or, with *into*, every value appended to it)."""
        cdef Py_ssize_t size
        cdef const char* want = _ascii(name, &size)
        cdef const char* p
        cdef const char* end
        cdef const char* value
        cdef const char* eol
        cdef const char* last
        if want == NULL:
            return None
        if self._lines is not None:
            # "Name: value\r\n" lines, exactly as the scanner accepted them.
            p = PyBytes_AS_STRING(self._lines)
            end = p + PyBytes_GET_SIZE(self._lines)
            while p < end:
                # Lines are "name:value\r\n" (the scanner checked them): the name matches
                # when its size bytes do and a colon follows; otherwise on to the next line.
                eol = <const char*>memchr(p, b"\n", end - p)
                if eol - p > size and p[size] == b":" and _same_name(p, size, want):
                    value = p + size + 1
                    while value[0] == b" " or value[0] == b"\t":
                        value += 1
                    last = eol - 1  # the CR
                    while last > value and (last[-1] == b" " or last[-1] == b"\t"):
                        last -= 1
                    found = _latin1(value, last - value)
                    if into is None:
                        return found
                    into.append(found)
                p = eol + 1
            return None
        for pair in self._pairs:
            field = (<tuple>pair)[0]
            if PyBytes_GET_SIZE(field) == size and _same_name(PyBytes_AS_STRING(field), size, want):
                data = (<tuple>pair)[1]
                found = _latin1(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
                if into is None:
                    return found
                into.append(found)
        return None

    def get(self, name, default=None):
        """The first value of *name*, or *default*."""
        return _first(self._find(name, None), default)

    def __getitem__(self, name):
        return _present(self._find(name, None), name)

    def __contains__(self, name):
        return self._find(name, None) is not None

    def getall(self, name, default=None):
        """Every value of *name*, in the order received (``default`` or ``[]`` if absent)."""
        cdef list values = []
        self._find(name, values)
        return _all(values, default)

    # -- the whole mapping, only when asked for ----------------------------

    cdef list _raw(self):
        if self._pairs is None:
            self._pairs = read_fields(self._lines)
            self._lines = None
        return self._pairs

    cdef dict _mapping(self):
        cdef dict index = self._index
        if index is None:
            index = {}
            for name, value in self._raw():
                index.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1")
                )
            self._index = index
        return index

    @property
    def raw(self):
        """The ``(name, value)`` byte pairs, in the order received."""
        return self._raw()

    def __iter__(self):
        return iter(self._mapping())

    def __len__(self):
        return len(self._mapping())

    def keys(self):
        """The lower-cased field names, each once."""
        return self._mapping().keys()

    def values(self):
        """The first value of each field name."""
        return _first_values(self._mapping())

    def items(self):
        """``(name, first value)`` for each field name."""
        return _first_items(self._mapping())

    def __eq__(self, other):
        return _equal(_first_items(self._mapping()), other)

    def __repr__(self):
        return f"Headers({self._raw()!r})"


Mapping.register(Headers)


cdef Headers new_headers(fields):
    """Headers over the scanner's lines (bytes) or httptools' pairs (a list)."""
    cdef Headers headers = Headers.__new__(Headers)
    if type(fields) is bytes:
        headers._lines = fields
    else:
        headers._pairs = fields
    return headers


# -- the query string -------------------------------------------------------


cdef str _unquote(const char* data, Py_ssize_t size, char* out):
    """``urllib.parse.unquote(s.replace("+", " "), errors="replace")`` of ASCII *data*."""
    return PyUnicode_DecodeUTF8(out, _unquote_bytes(data, size, out), "replace")


cdef Py_ssize_t _unquote_bytes(const char* data, Py_ssize_t size, char* out) noexcept:
    """The bytes ``_unquote`` decodes, written to *out*; how many."""
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t n = 0
    cdef char c
    while i < size:
        c = data[i]
        if c == b"+":
            c = b" "
        elif (c == b"%" and i + 2 < size and HEX[<unsigned char>data[i + 1]] >= 0
                and HEX[<unsigned char>data[i + 2]] >= 0):
            # A "%" not followed by two hex digits stays as it is, as unquote keeps it.
            c = <char>(HEX[<unsigned char>data[i + 1]] * 16 + HEX[<unsigned char>data[i + 2]])
            i += 2
        out[n] = c
        n += 1
        i += 1
    return n


cdef inline bint _plain(const char* data, Py_ssize_t size) noexcept:
    """No "%" and no "+": the bytes are what parse_qsl makes of them."""
    cdef Py_ssize_t i
    for i in range(size):
        if data[i] == b"%" or data[i] == b"+":
            return False
    return True


cdef list _parse_query(const char* p, const char* end):
    """``parse_qsl(string, keep_blank_values=True)``: "&" separates, empty parts are skipped."""
    cdef const char* amp
    cdef const char* eq
    cdef list pairs = []
    # Decoding never lengthens: one scratch buffer holds any part.
    cdef char* out = <char*>PyMem_Malloc(end - p + 1)
    if out == NULL:
        raise MemoryError()
    try:
        while p < end:
            amp = <const char*>memchr(p, b"&", end - p)
            if amp == NULL:
                amp = end
            if amp > p:
                eq = <const char*>memchr(p, b"=", amp - p)
                if eq == NULL:
                    pairs.append((_unquote(p, amp - p, out), ""))
                else:
                    pairs.append((_unquote(p, eq - p, out), _unquote(eq + 1, amp - eq - 1, out)))
            p = amp + 1
    finally:
        PyMem_Free(out)
    return pairs


@cython.final
@cython.freelist(16)
cdef class Query:
    """The query string as a read-only, multi-valued mapping (compiled).

    ``query["q"]`` and ``query.get("q")`` give the first value, :meth:`getall`
    every value in order; decoded as ``urllib.parse.parse_qs`` does with blank
    values kept (``+`` is a space, bad escapes stay as they are, UTF-8 errors
    become U+FFFD). A lookup scans the string and decodes only what it returns.
    """

    def __init__(self, string):
        self._source = bytes(string)
        self._start = 0

    cdef list _parsed(self):
        cdef const char* p
        if self._pairs is None:
            p = PyBytes_AS_STRING(self._source)
            self._pairs = _parse_query(p + self._start, p + PyBytes_GET_SIZE(self._source))
        return self._pairs

    cdef object _find(self, name, list into):
        """The first value of *name* (or, with *into*, every value appended to it)."""
        cdef Py_ssize_t size
        cdef const char* want = _ascii(name, &size)
        cdef const char* p
        cdef const char* end
        cdef const char* amp
        cdef const char* eq
        cdef char scratch[256]
        cdef char* out
        cdef Py_ssize_t length
        cdef bint found
        if want == NULL or self._pairs is not None:
            # Non-ASCII names (rare) compare after decoding; parsed pairs are at hand.
            for pair in self._parsed():
                if (<tuple>pair)[0] == name:
                    if into is None:
                        return (<tuple>pair)[1]
                    into.append((<tuple>pair)[1])
            return None
        p = PyBytes_AS_STRING(self._source) + self._start
        end = PyBytes_AS_STRING(self._source) + PyBytes_GET_SIZE(self._source)
        if end - p <= 256:
            out = scratch
        else:
            out = <char*>PyMem_Malloc(end - p)
            if out == NULL:
                raise MemoryError()
        try:
            while p < end:
                amp = <const char*>memchr(p, b"&", end - p)
                if amp == NULL:
                    amp = end
                if amp > p:
                    eq = <const char*>memchr(p, b"=", amp - p)
                    if eq == NULL:
                        eq = amp
                    if _plain(p, eq - p):
                        found = eq - p == size and memcmp(p, want, size) == 0
                    else:
                        length = _unquote_bytes(p, eq - p, out)
                        found = length == size and memcmp(out, want, size) == 0
                    if found:
                        value = "" if eq == amp else _unquote(eq + 1, amp - eq - 1, out)
                        if into is None:
                            return value
                        into.append(value)
                p = amp + 1
            return None
        finally:
            if out != scratch:
                PyMem_Free(out)

    def get(self, name, default=None):
        """The first value of *name*, or *default*."""
        return _first(self._find(name, None), default)

    def __getitem__(self, name):
        return _present(self._find(name, None), name)

    def __contains__(self, name):
        return self._find(name, None) is not None

    def getall(self, name, default=None):
        """Every value of *name*, in order (``default`` or ``[]`` if absent)."""
        cdef list values = []
        self._find(name, values)
        return _all(values, default)

    @property
    def pairs(self):
        """Every ``(name, value)``, in order."""
        return list(self._parsed())

    cdef dict _mapping(self):
        cdef dict index = self._index
        if index is None:
            index = {}
            for name, value in self._parsed():
                index.setdefault(name, []).append(value)
            self._index = index
        return index

    def __iter__(self):
        return iter(self._mapping())

    def __len__(self):
        return len(self._mapping())

    def keys(self):
        """Each name once, in order of first appearance."""
        return self._mapping().keys()

    def values(self):
        """The first value of each name."""
        return _first_values(self._mapping())

    def items(self):
        """``(name, first value)`` for each name."""
        return _first_items(self._mapping())

    def __eq__(self, other):
        return _equal(_first_items(self._mapping()), other)

    def __repr__(self):
        return f"Query({self._source[self._start:]!r})"


Mapping.register(Query)


cdef Query new_query(bytes target):
    """The query of request target *target* (everything after its first "?"), in place."""
    cdef Query query = Query.__new__(Query)
    cdef const char* p = PyBytes_AS_STRING(target)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(target)
    cdef const char* mark = <const char*>memchr(p, b"?", size)
    query._source = target
    query._start = size if mark == NULL else mark + 1 - p
    return query


cdef str decode_path(bytes target):
    """The path of *target*: up to its "?", percent-decoded, UTF-8 (surrogateescape)."""
    cdef const char* p = PyBytes_AS_STRING(target)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(target)
    cdef const char* mark = <const char*>memchr(p, b"?", size)
    if mark != NULL:
        size = mark - p
    if memchr(p, b"%", size) == NULL:
        return PyUnicode_DecodeUTF8(p, size, "surrogateescape")
    from ._fields_py import decode_path as decode_escaped  # rare: the pure twin's code

    return decode_escaped(target)
