"""Fixtures shared by every test: the core under test, a protocol on a fake transport,
a live server. The helpers behind them live in ``support.py``.

Every behavioural test takes the ``impl`` fixture, so it runs once against the
Cython core and once against the pure-Python core (the same source, not compiled).
The Cython parameter is only skipped when ``CYHTTP_NO_EXTENSIONS`` is set; otherwise
a missing compiled core fails loudly.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Callable, Optional

import pytest

from .support import IMPLS, Conn, LiveServer, new_loop


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    """Name of the core under test."""
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    """Run ``async def`` tests on a fresh loop (uvloop's when installed; no plugin needed)."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(asyncio.wait_for(func(**kwargs), 30))
    return True


@pytest.fixture
def conn(impl: str) -> Callable[..., Conn]:
    """Factory: ``conn(app, **options)`` gives a :class:`Conn` of the core under test."""
    return lambda app, **options: Conn(app, impl, **options)


@pytest.fixture
def live(impl: str) -> Callable[..., LiveServer]:
    """Factory: ``with live(app, **options) as srv:`` serves *app* with the core under test."""
    return lambda app, **options: LiveServer(app, impl, **options)
