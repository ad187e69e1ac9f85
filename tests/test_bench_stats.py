"""Benchmark summaries: median, MAD, p95 agree with the standard library's definitions."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlxstate.bench.stats import median, percentile, summarize

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=50))
def test_median_and_mad_match_statistics(values: list[float]) -> None:
    stats = summarize(values)
    assert stats is not None
    assert stats.median == pytest.approx(statistics.median(values))
    deviations = [abs(v - statistics.median(values)) for v in values]
    assert stats.mad == pytest.approx(statistics.median(deviations), abs=1e-9)
    assert stats.min == min(values) and stats.max == max(values) and stats.n == len(values)
    assert stats.min <= stats.p95 <= stats.max


@given(st.lists(finite, min_size=2, max_size=50))
def test_p95_is_statistics_inclusive_quantile(values: list[float]) -> None:
    expected = statistics.quantiles(values, n=20, method="inclusive")[-1]
    assert percentile(values, 95) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_one_outlier_moves_median_and_mad_little() -> None:
    stats = summarize([50.0, 51.0, 49.0, 50.5, 5.0])
    assert stats is not None
    assert stats.median == 50.0 and stats.mad == 1.0


def test_no_values() -> None:
    assert summarize([]) is None
    with pytest.raises(ValueError):
        median([])


def test_nan_and_infinity_are_left_out() -> None:
    stats = summarize([float("nan"), float("inf"), 1.0, 2.0, float("-inf")])
    assert stats is not None and (stats.median, stats.n, stats.max) == (1.5, 2, 2.0)
    assert summarize([float("nan"), float("inf")]) is None
