# cython: language_level=3
"""The compiled primitives of the protocol: what only C can do cheaply.

``_protocol.py`` is the one source of the connection protocol. Compiled as
``_protocol_c`` it uses these; imported as is (the pure build), it uses their
twins in ``_primitives_py.py``, which give the same results in plain Python:

* ``Output``: the response buffer (storage borrowed from a free list while it has
  bytes to write here; a ``bytearray`` there);
* ``Scanner``: reads plain request heads straight from the read buffer (``_head``);
  the pure one accepts nothing, so httptools reads every head;
* ``ResponseFields``: reads a response's fields, in place for the compiled classes
  and the pure ones' slots, so that nothing a handler does to a response crashes;
* ``call_handler``: the handler's first step, in its own context (the C context
  API and ``PyIter_Send``: no StopIteration, no Task when it does not suspend);
* ``date_block``: the Server/Date lines, cached per second with C ``time()``;
* ``asgi_headers``: a request's fields for an ASGI scope, names lowered in C;
* ``wsgi_fields``: a request's fields put in a WSGI environ, read from its lines in C;
  ``FieldKeys``, the environ keys of well-known field names, found without a name made;
* ``new_headers``, ``new_query``, ``decode_path``: the request accessors of ``_fields``
  (cimported through ``_primitives.pxd``), which read the received bytes in place;
* ``split_target``: a target's path and query string, split with ``memchr``;
* ``Wake``: what a pool thread sleeps on until it has work, given without the GIL;
* ``Mutex``: a lock whose methods are C calls to the compiled code that types it.
"""

from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Realloc
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport PyObject
from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
)
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport (
    PyUnicode_1BYTE_DATA,
    PyUnicode_1BYTE_KIND,
    PyUnicode_DecodeLatin1,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
)
from libc.string cimport memcmp
from libc.time cimport time, time_t

from ._response cimport StreamingResponse

from types import CoroutineType, MemberDescriptorType

from . import _outcomes, _stepping, _wire
from . import response as responses
from .config import head_limits
from .response import Response as PyResponse
from .response import declared_length, fields

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    object PyContext_CopyCurrent()
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    # Returns -1 (exception set), 0 (returned, *presult = value) or 1 (yielded).
    int PyIter_Send(object iter, object arg, PyObject** presult) except -1
    long PyLong_AsLongAndOverflow(object value, int* overflow) noexcept
    dict _PyDict_NewPresized(Py_ssize_t minused)

cdef enum:
    OUT_MIN = 4096          # first allocation of the output buffer
    OUT_KEEP = 16384        # larger buffers are freed when handed back
    SPARES = 64             # blocks kept for the next Output that has something to write

cdef int FLAG_MASK = _wire.FLAG_MASK
cdef tuple METHOD_NAMES = _wire.SCANNED_METHODS  # in the order of _head's METHOD_* indexes
# Every class served (the pure ones too, more slowly): _response registered its own at its
# import, which cimporting it made happen before this.
cdef tuple RESPONSE_TYPES = responses.RESPONSE_TYPES
cdef tuple STREAMING_TYPES = responses.STREAMING_TYPES


# Output storage not in use, process-wide: an Output borrows a block when it has something
# to write and hands it back once its bytes have gone to the transport, so that an idle
# connection holds none, while a busy one pays a few instructions instead of a malloc.
cdef char* _spare_data[SPARES]
cdef Py_ssize_t _spare_cap[SPARES]
cdef int _spares = 0


cdef class Output:
    """The bytes the connection will write next (one ``transport.write`` per read)."""

    def __dealloc__(self):
        self._give_back()

    def capacity(self):
        """The bytes of storage this buffer holds (0 while it has nothing to write)."""
        return self._cap

    cdef int reserve(self, Py_ssize_t size) except -1:
        """Make room for *size* more bytes, so that the ``put`` methods may follow."""
        global _spares
        cdef Py_ssize_t need = self._size + size
        cdef Py_ssize_t cap
        cdef char* grown
        if need > self._cap:
            if self._cap == 0 and _spares:
                _spares -= 1
                self._data = _spare_data[_spares]
                self._cap = _spare_cap[_spares]
                if need <= self._cap:
                    return 0
            cap = self._cap * 2 if self._cap else OUT_MIN
            while cap < need:
                cap *= 2
            grown = <char*>PyMem_Realloc(self._data, cap)
            if grown == NULL:
                raise MemoryError()
            self._data = grown
            self._cap = cap
        return 0

    cdef bytes take(self):
        """Everything buffered, as bytes; the buffer is empty, its storage handed back."""
        data = PyBytes_FromStringAndSize(self._data, self._size)
        self._size = 0
        self._give_back()
        return data

    cdef bytes since(self, Py_ssize_t start):
        return PyBytes_FromStringAndSize(self._data + start, self._size - start)

    cdef void truncate(self, Py_ssize_t size) noexcept:
        self._size = size
        if size == 0:
            self._give_back()

    cdef void _give_back(self) noexcept:
        """Keep the storage for the next buffer that writes, or free it."""
        global _spares
        if self._cap == 0:
            return
        if self._cap <= OUT_KEEP and _spares < SPARES:
            _spare_data[_spares] = self._data
            _spare_cap[_spares] = self._cap
            _spares += 1
        else:
            PyMem_Free(self._data)
        self._data = NULL
        self._cap = 0


cdef class Scanner:
    """Offers each head at a message boundary to ``_head.scan``, within the limits."""

    def __init__(self, buffer, config):
        cdef Py_buffer view
        PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
        self._data = <const unsigned char*>view.buf  # stays valid: buffer holds the export
        PyBuffer_Release(&view)
        self._buffer = buffer
        self._methods = METHOD_NAMES
        self._max_url, self._max_head, self._max_headers, self._max_body = head_limits(config)


cdef Py_ssize_t _slot_offset(str name) except -1:
    """Where pure ``Response`` instances keep the ``__slots__`` field *name*."""
    descr = PyResponse.__dict__[name]
    if type(descr) is not MemberDescriptorType:
        raise TypeError(f"Response.{name} is not a slot")
    return (<PyMemberDescrObject*><PyObject*>descr).d_member.offset


# Reading a Response field through its descriptor costs ~100 instructions (type
# lookup along the MRO, then the descriptor call); these are read in place.
# Subclasses keep the base class's slots at the same offsets.
cdef Py_ssize_t STATUS_SLOT = _slot_offset("_status")
cdef Py_ssize_t FLAGS_SLOT = _slot_offset("_flags")
cdef Py_ssize_t HEAD_SLOT = _slot_offset("_head")
cdef Py_ssize_t BODY_SLOT = _slot_offset("_body")


cdef inline object _slot(response, Py_ssize_t offset):
    """The slot at *offset* of a pure ``Response`` (or subclass) instance; None if unset."""
    cdef PyObject* value = (<PyObject**>(<char*><PyObject*>response + offset))[0]
    if value == NULL:
        return None
    return <object>value


cdef inline int _small_int(value, int high) noexcept:
    """*value* if it is an ``int`` from 0 to *high*, else -1 (no exception, no overflow)."""
    cdef int overflow
    cdef long number
    if type(value) is not int:
        return -1
    number = PyLong_AsLongAndOverflow(value, &overflow)  # cannot fail on an exact int
    if overflow or number < 0 or number > high:
        return -1
    return <int>number


cdef class ResponseFields:
    """What the protocol serves of a response: ``read`` fills the fields, returns the status.

    A status below 100 means the response cannot be served (``invalid_field`` says why).
    """

    cdef int _read_other(self, response) except -1:
        cdef Response plain
        cdef StreamingResponse streaming
        if isinstance(response, Response):
            plain = <Response>response
            self.status, self.flags, self.head, self.body, self.length = (
                plain.status, plain._flags, plain._head, plain.body, plain._length
            )
            return self.status
        if isinstance(response, StreamingResponse):
            streaming = <StreamingResponse>response
            self.status, self.flags, self.head, self.body, self.length = (
                streaming.status, streaming._flags, streaming._head, None, streaming._length
            )
            return self.status
        # A pure-Python response: a handler can reach its slots, skip __init__ or
        # subclass it, and nothing it does may crash the process.
        is_plain = isinstance(response, PyResponse)
        if is_plain:
            status = _slot(response, STATUS_SLOT)
            flags = _slot(response, FLAGS_SLOT)
            head = _slot(response, HEAD_SLOT)
            body = _slot(response, BODY_SLOT)
        else:
            status, flags, head, _ = fields(response)
            body = b""
        self.status = _small_int(status, 599)
        self.flags = _small_int(flags, FLAG_MASK)
        if (
            self.status < 0 or self.flags < 0
            or type(head) is not bytes or type(body) is not bytes
        ):
            self.status = 0
        else:
            self.head = head
            self.body = body if is_plain else None
            self.length = declared_length(response)
        return self.status


cdef bint _is_other_response(obj):
    return type(obj) is StreamingResponse or isinstance(obj, RESPONSE_TYPES)


# Type -> whether a Task waits for its instances: a missing attribute costs an
# exception to find, so each type is looked at once (a program has few of them).
cdef dict _future_types = {}


cdef bint is_future(obj):
    """Whether a Task waits for *obj*: asyncio's duck type (``asyncio.isfuture``), read
    on the type alone, where the mark is a descriptor (Futures, Tasks, WSGI calls)."""
    kind = type(obj)
    known = _future_types.get(kind)
    if known is None:
        known = getattr(kind, "_asyncio_future_blocking", None) is not None
        if len(_future_types) < 64:
            _future_types[kind] = known
    return known


cdef object settled(task):
    """The response a finished handler future holds; None where ``_outcomes.outcome``
    must say what to answer (it was cancelled, it failed, it is not a response)."""
    if isinstance(task, Landing):
        answer = (<Landing>task).answer
        return answer if is_response(answer) else None
    if task.cancelled() or task.exception() is not None:
        return None
    result = task.result()
    return result if is_response(result) else None


cdef bint is_streaming(obj):
    if type(obj) is Response:  # the common answer: not through isinstance's slow miss
        return False
    return type(obj) is StreamingResponse or isinstance(obj, STREAMING_TYPES)


cdef list asgi_headers(fields):
    """A request's header *fields* for an ASGI scope: names lower-cased, in order."""
    if type(fields) is bytes:  # the scanner's field lines: read once, lowered as they are
        return read_fields(fields, True)
    return [(lower_name(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)), value)
            for name, value in fields]


cdef class FieldKeys:
    """The environ keys of well-known field names, found in C from a name as received,
    in any case: no lower-case name is made, hashed and dropped per field.

    A table of open addressing, filled once by the constructor from *known* (names in
    lower case, letters, digits and dashes only) and never changed after: threads read
    it without a lock."""

    def __cinit__(self, dict known):
        cdef size_t size = 16
        cdef size_t slot
        cdef bytes name
        cdef str key
        while size < 2 * <size_t>len(known):  # at most half full: short probes
            size *= 2
        self.table = <_Known*>PyMem_Calloc(size, sizeof(_Known))
        if self.table == NULL:
            raise MemoryError()
        self.mask = size - 1
        self.owned = []
        for name, key in known.items():
            if not name or name.strip(b"abcdefghijklmnopqrstuvwxyz0123456789-"):
                raise ValueError(f"not a field name in lower case: {name!r}")
            slot = _fold_hash(name, len(name)) & self.mask
            while self.table[slot].name != NULL:
                slot = (slot + 1) & self.mask
            self.table[slot].name = PyBytes_AS_STRING(name)
            self.table[slot].size = len(name)
            self.table[slot].key = <PyObject*>key
            self.owned.append((name, key))  # what the table points into, kept alive

    def __dealloc__(self):
        PyMem_Free(self.table)

    def get(self, bytes name):
        """The key of field *name* (any case), or None for a name not in the table."""
        return self.find(PyBytes_AS_STRING(name), len(name))

    cdef str find(self, const char* name, Py_ssize_t size):
        cdef size_t slot = _fold_hash(name, size) & self.mask
        cdef _Known* known
        cdef Py_ssize_t i
        while True:
            known = &self.table[slot]
            if known.name == NULL:
                return None
            if known.size == size:
                for i in range(size):
                    # Exact for the table's characters (letters, digits, dashes) against
                    # a token's (what the parsers let through as a name).
                    if (name[i] | 0x20) != known.name[i]:
                        break
                else:
                    return <str>known.key
            slot = (slot + 1) & self.mask


cdef inline size_t _fold_hash(const char* name, Py_ssize_t size) noexcept:
    """FNV-1a of *name* with each byte's 0x20 bit set: the same for a name in any case."""
    cdef size_t h = 2166136261
    cdef Py_ssize_t i
    for i in range(size):
        h = (h ^ <unsigned char>(name[i] | 0x20)) * 16777619
    return h


cdef tuple wsgi_fields(fields, dict env, FieldKeys known, dict keys, key_of, str host_key,
                       str for_key, str proto_key, str last_host):
    """Put a request's header *fields* (the scanner's field lines, or ``(name, value)``
    pairs) in the WSGI environ *env*, each under its key: *known*'s, else *keys*' (names
    in lower case to keys), else ``key_of(keys, name)`` makes one ("" for a field not
    passed on). Returns the value under *host_key* (None without one) and whether
    *for_key* or *proto_key* was put. A Host that reads as *last_host* (the previous
    request's) is that very string: nothing decoded, and its hash (the server's cache
    key) known."""
    cdef Field field
    cdef const char* p = NULL
    cdef const char* end = NULL
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t count = 0
    cdef str key
    cdef str text
    cdef bint lines = type(fields) is bytes  # read in place: no pair made per field
    host = None
    cdef bint proxied = False
    if lines:
        p = PyBytes_AS_STRING(fields)
        end = p + PyBytes_GET_SIZE(fields)
    else:
        count = len(fields)
    while True:
        if lines:
            if p >= end:
                break
            p = next_field(p, end, &field)
        else:
            if i >= count:
                break
            name, value = fields[i]  # held here while the field points into them
            i += 1
            field.name, field.name_size = PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)
            field.value, field.value_size = PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)
        if field.name_size == 4 and _is_host(field.name):  # in every request: no lookup
            key = host_key
        else:
            key = known.find(field.name, field.name_size)
            if key is None:
                key = _wsgi_key(lower_name(field.name, field.name_size), keys, key_of)
        if not key:
            continue
        if key is host_key:
            # Only the first Host is taken as *last_host*: a repeated one must not read
            # as the first (its text the same object) and so escape the join.
            text = _text_as(field.value, field.value_size, last_host if host is None else None)
            host = _put_field(env, key, text)
        else:
            _put_field(env, key, PyUnicode_DecodeLatin1(field.value, field.value_size, NULL))
            if key is for_key or key is proto_key:
                proxied = True
    return host, proxied


cdef inline bint _is_host(const char* name) noexcept:
    """Whether the 4 characters at *name* are "host" in any case (a letter's only
    other case differs by the 0x20 bit; no other character reads as one with it)."""
    return ((name[0] | 0x20) == b"h" and (name[1] | 0x20) == b"o"
            and (name[2] | 0x20) == b"s" and (name[3] | 0x20) == b"t")


cdef inline str _text_as(const char* value, Py_ssize_t size, str known):
    """*value* as text (latin-1): *known* itself where it reads the same."""
    if (known is not None and PyUnicode_KIND(known) == PyUnicode_1BYTE_KIND
            and PyUnicode_GET_LENGTH(known) == size
            and memcmp(PyUnicode_1BYTE_DATA(known), value, size) == 0):
        return known
    return PyUnicode_DecodeLatin1(value, size, NULL)


cdef inline str _wsgi_key(bytes name, dict keys, key_of):
    key = keys.get(name)
    return key_of(keys, name) if key is None else key


cdef inline str _put_field(dict env, str key, str text):
    """*text* under *key*, after what is there already (the value now there)."""
    prior = env.setdefault(key, text)
    if prior is text:
        return text
    # RFC 9110 §5.3: repeated fields are one comma-separated list; Cookie's separator
    # is "; " (RFC 6265 §5.4).
    text = prior + ("; " if key == "HTTP_COOKIE" else ", ") + text
    env[key] = text
    return text


cdef tuple split_target(bytes target):
    """A request target's path and query string: the bytes before and after its first ``?``."""
    cdef const char* data = PyBytes_AS_STRING(target)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(target)
    cdef const char* mark = <const char*>memchr(data, 63, size)  # 63: '?'
    if mark == NULL:
        return target, b""
    return (PyBytes_FromStringAndSize(data, mark - data),
            PyBytes_FromStringAndSize(mark + 1, size - (mark - data) - 1))


cdef dict roomy_copy(dict items, Py_ssize_t room):
    """A copy of *items* with room for *room* keys before it grows; a copy of that
    keeps its table, and so its room."""
    cdef dict copy = _PyDict_NewPresized(room)
    for key, value in items.items():  # one by one: update() would take items' table
        copy[key] = value
    return copy


cdef object call_handler(app, req):
    """Run the handler, its first step eagerly: the response, or the Task finishing it."""
    cdef PyObject* step = NULL
    cdef int state
    ctx = PyContext_CopyCurrent()
    try:
        PyContext_Enter(ctx)
        try:
            result = app(req)
            if type(result) is CoroutineType:
                it = result
            elif type(result) is Response or is_future(result) or _is_other_response(result):
                # A future is waited for as a Task would be: the ASGI layer's, or a
                # future-like one (asyncio's duck type), the WSGI layer's.
                return result
            else:
                it = _stepping.awaitable(result)
            state = PyIter_Send(it, None, &step)
            value = <object>step
            Py_XDECREF(step)
            if state == 0:
                if is_response(value):
                    return value
                return _outcomes.checked(value, req)
            return _stepping.start_task(it, value, ctx)
        finally:
            PyContext_Exit(ctx)
    except Exception as exc:
        return _outcomes.failed(req, exc)


cdef time_t _date_second = -1
cdef bytes _date_block = b""


cdef bytes date_block():
    """The Server/Date lines, re-formatted only when the second changes."""
    global _date_second, _date_block
    cdef time_t now = time(NULL)
    if now != _date_second:
        _date_second = now
        _date_block = _wire.format_date_block(now)
    return _date_block


cdef class Mutex:
    """A lock, as ``threading.Lock`` (``acquire``, ``release``, ``with``), for the
    compiled code that takes it on every request: typed as this class, its methods
    are C calls, not Python method calls. Only blocking lets go of the GIL: one
    thread holds it while the other waits for it, never both."""

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyThread_free_lock(self.lock)

    cpdef bint acquire(self) except -1:
        """Take the lock, waiting (without the GIL) while another thread holds it."""
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
        return True

    cpdef release(self):
        """Let go of the lock (held by this thread)."""
        PyThread_release_lock(self.lock)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


cdef class Landing:
    """The base of a future-like handler result whose response lands on the loop (a
    WSGI call): the protocol gives it the callback and the slot its response goes to
    as fields, and reads the response from ``answer``, with no callback object made
    or scheduled per request.

    Whoever lands it calls ``on_done(slot, self)`` once, as the future's done callback.
    """


cdef class Launcher:
    """The base of a handler that runs none of the application on the loop (the WSGI
    layer's): it starts each request's work elsewhere, in a context of its own, and
    returns the future of its response. The protocol calls its ``launch`` in C, with
    no context made for the call."""

    cdef launch(self, req):
        raise NotImplementedError


cdef class Wake:
    """A pool thread's wake-up call: ``wait`` sleeps until ``give``.

    ``give`` lets go of the GIL before it wakes the thread, so the thread takes the
    GIL at once rather than waking to find it held and sleeping again (two context
    switches). The giver gets the GIL back when the woken thread lets go of it: it
    finished its work, blocked, or was asked to after the switch interval.
    """

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()
        PyThread_acquire_lock(self.lock, WAIT_LOCK)  # held: wait() sleeps

    def __dealloc__(self):
        PyThread_free_lock(self.lock)

    def wait(self):
        """Sleep until :meth:`give` (at once if it was given since the last wait)."""
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)

    def give(self):
        """Wake the thread waiting (or the next to :meth:`wait`)."""
        with nogil:
            PyThread_release_lock(self.lock)
