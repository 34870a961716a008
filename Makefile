PYTHON ?= python3

.PHONY: dev test test-pure lint docs debug annotate dist wheels clean

# The compiled modules whose .pyi stubs stubtest holds to the modules themselves.
STUBTEST_MODULES = cyhttp._protocol_c cyhttp._asgi_c cyhttp._request cyhttp._primitives \
	cyhttp._fields cyhttp._response cyhttp._websocket_c cyhttp._wsgi_c \
	cyhttp._threads_c

dev:
	$(PYTHON) -m pip install -e '.[test]'

test:
	$(PYTHON) -m pytest

test-pure:
	CYHTTP_NO_EXTENSIONS=1 $(PYTHON) -m pytest

lint:  # every lint step, once: CI (.ci/run) runs this target
	ruff check .
	ruff format --check .
	mypy
	cython-lint src/cyhttp
	$(PYTHON) -m mypy.stubtest --allowlist stubtest-allowlist.txt $(STUBTEST_MODULES)

docs:  # the documentation in site/ (pip install '.[docs]'); broken links fail it
	mkdocs build --strict

debug:
	CYHTTP_DEBUG=1 $(PYTHON) -m pip install -e '.[test]'

annotate:
	CYHTTP_ANNOTATE=1 $(PYTHON) -m pip install -e '.[test]'

dist:
	$(PYTHON) -m pip install build && $(PYTHON) -m build

wheels:  # manylinux wheels for CPython 3.11-3.13, each verified without a compiler
	bash .ci/wheels

clean:
	rm -rf build dist site wheelhouse src/*.egg-info src/cyhttp/*.c src/cyhttp/*.so src/cyhttp/*.html
