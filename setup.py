"""Build the compiled core.

The connection protocol has one source, ``src/cyhttp/_protocol.py`` (the pure
core as it is); the compiled core is that module compiled once more as
``cyhttp._protocol_c``, from a copy made here beside its ``_protocol_c.pxd``
(Cython's pure-Python mode). The copy is build output, like the C files.

Set ``CYHTTP_DEBUG=1`` for a debug build (line tracing, bounds checks, C asserts)
and ``CYHTTP_ANNOTATE=1`` to write ``cython -a`` HTML next to the sources.
"""

import os
import shutil

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PACKAGE = "src/cyhttp"

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


class BuildPy(build_py):
    """Leaves the build-time copy out of the package: its compiled module is shipped."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if m[1] != "_protocol_c"]


# copy2 keeps the modification time, so an unchanged source is not recompiled.
shutil.copy2(f"{PACKAGE}/_protocol.py", f"{PACKAGE}/_protocol_c.py")

extensions = [
    Extension(
        f"cyhttp.{name}",
        [f"{PACKAGE}/{name}.py" if name == "_protocol_c" else f"{PACKAGE}/{name}.pyx"],
        define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O2"],
    )
    # _head (the head scanner), _fields (request accessors), _response, _request and
    # _primitives are cimported by the compiled protocol, _protocol_c.
    for name in ("_head", "_fields", "_response", "_request", "_primitives", "_protocol_c")
]

setup(
    cmdclass={"build_py": BuildPy},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("CYHTTP_ANNOTATE") == "1",
    ),
)
