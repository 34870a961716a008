"""What ``_protocol.py`` uses of Cython's ``cython`` module, for a process without Cython.

Only the build needs Cython. The protocol asks ``cython.compiled`` and declares the
C types of some locals with ``@cython.locals``; in plain Python neither does anything.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

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


def locals(**types: Any) -> Callable[[F], F]:  # Cython's name
    """Declares the C types of a function's locals: nothing to do in plain Python."""
    return lambda function: function
