"""The servers the load suite compares, each run as ``python -m benchmarks.servers.NAME PORT``.

Every server answers the same three routes: ``GET /`` with ``Hello, world!``
(text/plain), ``POST /echo`` with the request body, ``GET /64k`` with 64 KiB.
"""
