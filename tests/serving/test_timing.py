"""``serving.timing``: percentiles agree with numpy's linear method; ``time_calls`` counts and warms up."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from serving.timing import percentile, percentiles, time_calls


@pytest.mark.parametrize(
    "values",
    [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0, 7.5], list(np.random.default_rng(0).gamma(2.0, 30.0, 101))],
    ids=["one", "two", "five-unsorted", "101-skewed"],
)
def test_percentiles_match_numpy_linear(values: list[float]) -> None:
    qs = [0, 50, 95, 99, 100]
    assert percentiles(values, qs) == pytest.approx(np.percentile(values, qs).tolist())


def test_percentile_is_one_of_percentiles() -> None:
    values = [3.0, 1.0, 2.0, 10.0, 7.5]
    assert percentile(values, 95) == percentiles(values, [95])[0] == pytest.approx(np.percentile(values, 95))


def test_percentiles_reject_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        percentiles([], [50])
    with pytest.raises(ValueError, match="between 0 and 100, got 101"):
        percentiles([1.0], [101])


def test_time_calls_counts_warm_up_apart_and_restores_gc() -> None:
    calls: list[int] = []
    times = time_calls(lambda: calls.append(1), n=5, warmup=2)
    assert len(times) == 5 and len(calls) == 7
    assert all(t >= 0 for t in times)
    assert gc.isenabled()
    with pytest.raises(ValueError, match="n=0"):
        time_calls(lambda: None, n=0)
