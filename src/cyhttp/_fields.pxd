# cython: language_level=3
# Compiled request accessors (header lookups, the query string, the path); cimported by
# _primitives, through which the compiled Request (request.py compiled as _request) builds them.

cdef class Headers:
    cdef object _lines      # the scanner's field lines (bytes), or None
    cdef list _pairs        # httptools' (name, value) pairs; from _lines once needed
    cdef dict _index        # lower-cased name -> values, built only to iterate

    cdef object _find(self, name, list into)
    cdef list _raw(self)
    cdef dict _mapping(self)


cdef class Query:
    cdef bytes _source      # the request target (or the string given) ...
    cdef Py_ssize_t _start  # ... whose query starts here
    cdef list _pairs        # decoded (name, value) pairs, parsed on first use
    cdef dict _index

    cdef list _parsed(self)
    cdef object _find(self, name, list into)
    cdef dict _mapping(self)


cdef Headers new_headers(fields)
cdef Query new_query(bytes target)
cdef str decode_path(bytes target)
