# cython: language_level=3
# The strict request-head scanner and the reader of the lines it accepts; cimported by _primitives.

from libc.string cimport memchr

# The character tables every compiled module shares, filled from the Python ones at import.
cdef unsigned char TOKEN[256]   # RFC 9110 tchar (_wire.TOKEN)
cdef unsigned char LOWER[256]   # ASCII lower case, as bytes.lower()

# Index of a request method in the core's table, in this order (_wire.SCANNED_METHODS).
cdef enum:
    METHOD_GET
    METHOD_HEAD
    METHOD_POST
    METHOD_PUT
    METHOD_DELETE
    METHOD_OPTIONS
    METHOD_PATCH

cdef struct Head:
    int method
    Py_ssize_t target           # offset of the request target
    Py_ssize_t target_len
    bint http10
    Py_ssize_t lines            # offset of the first field line
    int fields                  # how many field lines
    Py_ssize_t field_bytes      # sum of name + value + 4 per field, as the core limits them
    int hosts
    bint close                  # Connection: close
    bint keep_alive             # Connection: keep-alive
    bint expect                 # the last Expect field is 100-continue
    unsigned long long length   # Content-Length, 0 when absent

# One field line of those scan accepted: its name, and its value without the whitespace
# around it.
cdef struct Field:
    const char* name
    Py_ssize_t name_size
    const char* value
    Py_ssize_t value_size

cdef Py_ssize_t scan(const unsigned char* data, Py_ssize_t size, Head* head) noexcept nogil
cdef bytes lower_name(const char* name, Py_ssize_t size)
cdef list read_fields(bytes lines, bint lower=*)


# Reads the field line at *p* (of the lines scan accepted, which end at *end*) into
# *field*; returns where the next one starts. Inline: it runs once per field line, in
# every module that reads them.
cdef inline const char* next_field(const char* p, const char* end, Field* field) noexcept nogil:
    cdef const char* colon = <const char*>memchr(p, b":", end - p)  # a name holds no colon
    cdef const char* value = colon + 1
    while value[0] == b" " or value[0] == b"\t":
        value += 1
    cdef const char* eol = <const char*>memchr(value, b"\r", end - value)  # a value holds no CR
    cdef const char* last = eol
    # A field value has no trailing whitespace either (RFC 9110 §5.5).
    while last > value and (last[-1] == b" " or last[-1] == b"\t"):
        last -= 1
    field.name = p
    field.name_size = colon - p
    field.value = value
    field.value_size = last - value
    return eol + 2
