"""Timing a call and summarising latencies: one ``time_calls`` and one ``percentiles`` for the whole project.

Percentiles interpolate linearly between order statistics (numpy's default, ``method="linear"``), so the
benchmark, the image measurements and the load lab's statistics agree on what "p95" means.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Sequence

__all__ = ["percentile", "percentiles", "time_calls"]


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values``, as :func:`percentiles` computes it."""
    return percentiles(values, (q,))[0]


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    """The ``qs``-th percentiles (each 0–100) of ``values`` with linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("Expected at least one value, got none.")
    found = []
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"Expected a percentile between 0 and 100, got {q!r}.")
        position = (len(ordered) - 1) * q / 100
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        found.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return found


def time_calls(call: Callable[[], object], *, n: int, warmup: int = 0) -> list[float]:
    """Milliseconds of ``n`` calls of ``call`` after ``warmup`` untimed ones, garbage collector off."""
    if n < 1:
        raise ValueError(f"Expected at least one timed call, got n={n!r}.")
    for _ in range(warmup):
        call()
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000.0)
        return times
    finally:
        if was_enabled:
            gc.enable()
