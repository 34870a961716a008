# For the type checker only: the part of Cython's ``cython`` module that cyhttp's
# one-source modules use is typed by its stand-in for a process without Cython.
from cyhttp._no_cython import *  # noqa: F403
from cyhttp._no_cython import compiled as compiled
