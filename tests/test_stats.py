"""Statistics helpers against numpy/scipy references (property tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from llenergymeasure.domain import stats

values = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40)


@given(values, st.floats(0, 100))
def test_percentile_matches_numpy(xs: list[float], q: float) -> None:
    assert stats.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), abs=1e-6)


@given(values)
def test_mean_and_stdev_match_numpy(xs: list[float]) -> None:
    assert stats.mean(xs) == pytest.approx(float(np.mean(xs)), abs=1e-6)
    if len(xs) > 1:
        assert stats.stdev(xs) == pytest.approx(float(np.std(xs, ddof=1)), rel=1e-9, abs=1e-6)


@given(st.floats(0.001, 0.999), st.integers(1, 200))
def test_t_ppf_matches_scipy(p: float, df: int) -> None:
    assert stats.student_t_ppf(p, df) == pytest.approx(float(sps.t.ppf(p, df)), rel=1e-8, abs=1e-8)


def test_t_ppf_known_values() -> None:
    assert stats.student_t_ppf(0.975, 2) == pytest.approx(4.302652729911275)
    assert stats.student_t_ppf(0.975, 10) == pytest.approx(2.2281388519649385)
    assert stats.student_t_ppf(0.5, 3) == 0.0


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30))
def test_confidence_interval_matches_scipy(xs: list[float]) -> None:
    low, high = stats.confidence_interval(xs, 0.95)
    if np.std(xs) == 0:
        assert low == pytest.approx(high)
        return
    ref = sps.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=sps.sem(xs))
    assert low == pytest.approx(ref[0], rel=1e-7, abs=1e-7)
    assert high == pytest.approx(ref[1], rel=1e-7, abs=1e-7)


def test_edge_cases() -> None:
    assert stats.mean([]) == 0.0 and stats.stdev([1.0]) == 0.0
    assert stats.coefficient_of_variation([0.0, 0.0]) == 0.0
    assert stats.confidence_interval([3.0]) == (3.0, 3.0)
    assert math.isclose(stats.coefficient_of_variation([10.0, 20.0]), math.sqrt(50) / 15)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)
