# cython: language_level=3
# The C types of the compiled build of _threads.py (Cython's pure-Python mode: setup.py
# compiles a copy of it as _threads_c, with these declarations). Nothing here is logic.

cimport cython

from ._primitives cimport Mutex

cdef bint PARALLEL


@cython.final
cdef class Pool:
    cdef readonly Py_ssize_t size
    cdef readonly str name
    cdef object new_wake
    cdef Mutex lock
    cdef object calls
    cdef list idle
    cdef readonly list threads
    cdef Py_ssize_t awake
    cdef readonly Py_ssize_t taken
    cdef bint closed

    @cython.locals(wakes=list, lock=Mutex)
    cpdef submit(self, calls)

    cpdef tuple check(self, Py_ssize_t seen)

    cdef _wake(self)
