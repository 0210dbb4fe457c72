"""The steady-state rule, and the energy and tokens inside a window (by hand and properties)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.serving.steady import (
    Window,
    counter_energy_j,
    power_energy_j,
    steady_window,
    tokens_in_window,
)


def test_steady_window_starts_one_median_lifetime_in_and_ends_at_the_last_send() -> None:
    sent = [float(i) for i in range(10)]  # one request a second for 10 s
    finish = [s + 2.0 for s in sent]  # each lives 2 s
    w = steady_window(sent, finish)
    assert w.steady and (w.start_sec, w.end_sec) == (2.0, 9.0)


def test_all_at_once_has_no_steady_state_and_uses_the_whole_run() -> None:
    w = steady_window([0.0] * 4, [1.0, 2.0, 3.0, 4.0])
    assert not w.steady and (w.start_sec, w.end_sec) == (0.0, 4.0)
    assert "whole run" in w.rule


def test_tokens_in_window_counts_timestamps_and_spreads_first_last_evenly() -> None:
    w = Window(1.0, 3.0, True, "")
    assert tokens_in_window([[0.5, 1.0, 2.0, 3.5]], [(0.5, 3.5, 4)], w) == 2
    # 10 tokens spread over 0..4 s: half of the span lies in 1..3 s.
    assert tokens_in_window([[]], [(0.0, 4.0, 10)], w) == pytest.approx(5.0)


def test_counter_and_power_energy_over_a_window_by_hand() -> None:
    times = [0.0, 1.0, 2.0, 3.0]
    assert counter_energy_j(times, [0.0, 100.0, 250.0, 300.0], 0.5, 2.5) == pytest.approx(225.0)
    # 100 W constant for 1.5 s, then a ramp: trapezoid with the edges interpolated.
    assert power_energy_j(times, [100.0, 100.0, 200.0, 200.0], 0.5, 2.0) == pytest.approx(
        50.0 + 150.0
    )


samples = st.lists(st.floats(min_value=0, max_value=1000), min_size=2, max_size=30)


@given(samples, st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_window_energy_is_additive_and_matches_the_whole(
    power: list[float], a: float, b: float, c: float
) -> None:
    times = [0.1 * i for i in range(len(power))]
    end = times[-1]
    t0, t1, t2 = sorted((a * end, b * end, c * end))
    whole = power_energy_j(times, power, 0.0, end)
    parts = power_energy_j(times, power, t0, t1) + power_energy_j(times, power, t1, t2)
    assert parts == pytest.approx(power_energy_j(times, power, t0, t2), abs=1e-6)
    assert power_energy_j(times, power, t0, t2) <= whole + 1e-6
    counter = [0.0]
    for i in range(1, len(power)):
        counter.append(counter[-1] + (power[i] + power[i - 1]) / 2 * 0.1)
    # On the sample grid, the counter of a trapezoid-integrated trace gives the same energy.
    i, j = sorted((int(a * (len(power) - 1)), int(c * (len(power) - 1))))
    assert counter_energy_j(times, counter, times[i], times[j]) == pytest.approx(
        power_energy_j(times, power, times[i], times[j]), abs=1e-6
    )


@given(
    st.lists(st.tuples(st.floats(0, 100), st.floats(0.01, 20)), min_size=1, max_size=40),
)
def test_steady_window_lies_inside_the_run(requests: list[tuple[float, float]]) -> None:
    sent = [s for s, _ in requests]
    finish = [s + d for s, d in requests]
    w = steady_window(sent, finish)
    assert min(sent) <= w.start_sec <= w.end_sec <= max(finish)
    if w.steady:
        assert w.end_sec == max(sent)


def test_counter_edges_outside_the_samples_are_extrapolated_not_clamped() -> None:
    times, counter = [1.0, 2.0, 3.0], [100.0, 400.0, 700.0]  # 300 W
    assert counter_energy_j(times, counter, 0.5, 3.25) == pytest.approx(300.0 * 2.75)
