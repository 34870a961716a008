"""The WSGI servers that have no command line of their own:
``python -m benchmarks.servers.wsgi_run {bjoern,fastpysgi} MODULE:ATTR PORT``."""

import importlib
import sys

from ._common import port


def main():
    server, target = sys.argv[1], sys.argv[2]
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    if server == "bjoern":
        import bjoern

        bjoern.run(app, "127.0.0.1", port())
    else:
        import fastpysgi

        fastpysgi.run(wsgi_app=app, host="127.0.0.1", port=port(), loglevel=0)


if __name__ == "__main__":
    main()
