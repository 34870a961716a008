"""Build the compiled core.

Set ``CYHTTP_DEBUG=1`` for a debug build (line tracing, bounds checks, C asserts)
and ``CYHTTP_ANNOTATE=1`` to write ``cython -a`` HTML next to the sources.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CYHTTP_DEBUG") == "1"

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG,
}

extensions = [
    Extension(
        f"cyhttp.{name}",
        [f"src/cyhttp/{name}.pyx"],
        define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O2"],
    )
    # _head (the head scanner), _fields (request accessors) and _response are cimported
    # by _core.
    for name in ("_head", "_fields", "_response", "_core")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("CYHTTP_ANNOTATE") == "1",
    )
)
