"""What the one-source modules (``_protocol.py``, ``request.py``, ...) use of Cython's
``cython`` module, for a process without Cython.

Only the build needs Cython. The modules ask ``cython.compiled``, declare the C types
of some locals with ``@cython.locals`` and give a class a free list; in plain Python
none of it does anything.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

compiled = False

# The C types named in the declarations: plain Python has only its own.
bint = bool
int = int  # C int: the name Cython gives it
Py_ssize_t = ulonglong = int
p_uchar = bytes  # what a pointer is made from, for type checkers
NULL: Any = None  # the null pointer (only ever passed in the compiled build)


def address(value: Any) -> Any:  # Cython's name
    """A pointer to *value* (only ever taken in the compiled build)."""
    return value


def cast(kind: Any, value: Any) -> Any:  # Cython's name
    """*value* as C type *kind* (only ever done in the compiled build)."""
    return value


def cclass(cls: C) -> C:  # Cython's name
    """Marks an extension type (only in the compiled build)."""
    return cls


def freelist(size: int) -> Callable[[C], C]:  # Cython's name
    """Keeps *size* freed instances of a class for reuse (only in the compiled build)."""
    return lambda cls: cls


def locals(**types: Any) -> Callable[[F], F]:  # Cython's name
    """Declares the C types of a function's locals: nothing to do in plain Python."""
    return lambda function: function
