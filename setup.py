"""Build the compiled core.

The connection protocol has one source, ``src/cyhttp/_protocol.py`` (the pure
core as it is); the compiled core is that module compiled once more as
``cyhttp._protocol_c``, from a copy made here under ``build/`` (outside the
package, so it is never imported or shipped) and typed by
``src/cyhttp/_protocol_c.pxd``, which Cython finds through the include path
(Cython's pure-Python mode). The ASGI layer, ``_asgi.py``, is built the same way
as ``cyhttp._asgi_c``, the WebSocket connection, ``_websocket.py``, as
``cyhttp._websocket_c``, the request handlers receive, ``request.py``, as
``cyhttp._request``, the WSGI layer, ``_wsgi.py``, as ``cyhttp._wsgi_c``, and its pool of threads,
``_threads.py``, as ``cyhttp._threads_c``.

Set ``CYHTTP_DEBUG=1`` for a debug build (line tracing, bounds checks, C asserts)
and ``CYHTTP_ANNOTATE=1`` to write ``cython -a`` HTML next to the sources.
"""

import os
import shutil

from Cython.Build import cythonize
from setuptools import Extension, setup

PACKAGE = "src/cyhttp"
COPY = "build/protocol/cyhttp"  # a package of its own, for the module's full name

DEBUG = os.environ.get("CYHTTP_DEBUG") == "1"

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG,
    # _protocol.py's annotations are for type checkers; its C types are in _protocol_c.pxd.
    "annotation_typing": False,
}


# The modules with one source for both builds: the source, and its compiled name.
ONE_SOURCE = {
    "_protocol_c": "_protocol",
    "_asgi_c": "_asgi",
    "_websocket_c": "_websocket",
    "_request": "request",
    "_wsgi_c": "_wsgi",
    "_threads_c": "_threads",
}

os.makedirs(COPY, exist_ok=True)
open(f"{COPY}/__init__.py", "a").close()
for compiled, source in ONE_SOURCE.items():
    # copy2 keeps the modification time, so an unchanged source is not recompiled.
    shutil.copy2(f"{PACKAGE}/{source}.py", f"{COPY}/{compiled}.py")

extensions = [
    Extension(
        f"cyhttp.{name}",
        [f"{COPY}/{name}.py" if name in ONE_SOURCE else f"{PACKAGE}/{name}.pyx"],
        define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O2"],
    )
    # _head (the head scanner), _fields (request accessors), _response, _request and
    # _primitives are cimported by the compiled protocol, _protocol_c, and its ASGI layer.
    for name in (
        "_head",
        "_fields",
        "_response",
        "_request",
        "_primitives",
        "_protocol_c",
        "_asgi_c",
        "_websocket_c",
        "_wsgi_c",
        "_threads_c",
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["src"],
        annotate=os.environ.get("CYHTTP_ANNOTATE") == "1",
    ),
)
