# cython: language_level=3
# The C types of the compiled build of _wsgi.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _wsgi_c, with these declarations). Nothing here is logic.

cimport cython

from ._primitives cimport FieldKeys, Landing, Launcher, Mutex
from ._request cimport Request as CRequest
from ._response cimport Response, StreamingResponse
from ._threads_c cimport Pool

cdef Py_ssize_t STREAM_HIGH_WATER
cdef Py_ssize_t KEYS_CACHED
cdef Py_ssize_t ENVIRON_ROOM
cdef object HEAD_DUE
cdef str HOST_KEY
cdef str FORWARDED_FOR_KEY
cdef str FORWARDED_PROTO_KEY
cdef FieldKeys KNOWN_FIELDS


cpdef str environ_key(dict keys, bytes name)


@cython.final
@cython.freelist(8)
cdef class _Wait:
    cdef object lock
    cdef object value
    cdef object error


@cython.final
@cython.freelist(16)
cdef class _Input:
    cdef readonly _Call call
    cdef bytes buffer
    cdef Py_ssize_t pos
    cdef bint eof

    cdef bint _more(self) except -1

    cdef bytes _take(self, Py_ssize_t end)


# Not final: it overrides Launcher's launch (Cython refuses that in a final class).
cdef class Wsgi(Launcher):
    cdef readonly object app
    cdef readonly Pool pool
    cdef object proxies
    cdef str scheme
    cdef Mutex lock
    cdef list outbox
    cdef bint wake_due
    cdef bint watching
    cdef bint kicking
    cdef list batch
    cdef dict statuses
    cdef public object loop
    cdef object listening
    cdef bint port_of_host
    cdef dict keys
    cdef dict hosts
    cdef str last_host
    cdef dict peers
    cdef dict _base

    @cython.locals(call=_Call, batch=list)
    cdef launch(self, req)

    @cython.locals(batch=list, call=_Call, lock=Mutex)
    cpdef kick(self, loop)

    @cython.locals(calls=list, responses=list, i=Py_ssize_t, call=_Call, lock=Mutex)
    cpdef deliver(self)

    @cython.locals(env=dict, template=dict, raw_path=bytes, query=bytes, peer=tuple, host=str,
                   proxied=bint, body=bytes, last_host=str, method=str, protocol=str)
    cpdef dict environ(self, _Call call)

    @cython.locals(peers=dict, start=dict)
    cdef tuple peer_of(self, client)

    cpdef set_base(self, str key, value)

    @cython.locals(known=tuple)
    cdef server_name(self, dict env, str host)

    cdef forwarded(self, dict env, fields)

    cdef post(self, _Call call)


@cython.final
@cython.freelist(16)
cdef class _Call(Landing):
    cdef Wsgi wsgi
    cdef CRequest req
    cdef object loop
    cdef bint dropped
    cdef object callback
    cdef public bint _asyncio_future_blocking
    cdef str method
    cdef bytes target
    cdef str protocol
    cdef object client
    cdef object fields
    cdef bint is_head
    cdef object context
    cdef object body
    cdef int status
    cdef str reason
    cdef object headers
    cdef bint streaming
    cdef object final
    cdef bint posted
    cdef object response
    cdef list pieces
    cdef Py_ssize_t buffered
    cdef bint ended
    cdef str problem
    cdef bint gone
    cdef _Wait room
    cdef object more

    cdef start(self, Wsgi wsgi, CRequest req, loop)

    cdef serve(self)

    cdef consume(self, result)

    cdef check_started(self)

    cdef complete(self, bytes body)

    cdef whole(self, bytes body)

    @cython.locals(status=str, line=bytes, plain=Response, streaming=StreamingResponse)
    cdef reasoned(self, response)

    @cython.locals(lock=Mutex)
    cdef give_whole(self, response)

    @cython.locals(lock=Mutex)
    cdef put(self, bytes piece)

    @cython.locals(lock=Mutex)
    cdef end(self)

    cdef failed(self, exc)

    cdef bint send_file(self, wrapper) except -1

    cdef bytes fetch(self)

    cdef take(self)

    cdef land(self, response)

    cdef stream_head(self)

    cdef notify(self, bint soon)

    cpdef bint done(self)

    cpdef tuple next_piece(self)

    cpdef stop(self)


@cython.final
cdef class _Body:
    cdef _Call call
