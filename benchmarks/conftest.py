"""Prints the Cython/pure-Python ratio of every micro case after the benchmark table."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter: Any) -> None:
    session = getattr(terminalreporter.config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    medians: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        impl = bench.params.get("impl") if bench.params else None
        if impl is None:
            continue
        per = bench.extra_info.get("requests_per_round", 1)
        medians.setdefault(bench.group, {})[impl] = bench.stats.median / per
    terminalreporter.write_sep("-", "per request: cython vs python (medians)")
    for group, by_impl in medians.items():
        if {"cython", "python"} <= by_impl.keys():
            c, p = by_impl["cython"], by_impl["python"]
            terminalreporter.write_line(
                f"{group:16s} cython {c * 1e9:8.0f} ns   python {p * 1e9:8.0f} ns   "
                f"ratio {p / c:5.2f}x"
            )
