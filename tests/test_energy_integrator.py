"""The trapezoid integrator: exact on piecewise-linear power, bounded error at step edges."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.energy.base import TrapezoidIntegrator
from tests.fakes.traces import ramp_plus_square


def integrate(times: list[float], powers: list[float]) -> float:
    integ = TrapezoidIntegrator()
    integ.reset(times[0], powers[0])
    for t, p in zip(times[1:-1], powers[1:-1], strict=True):
        integ.add(t, p)
    return integ.finish(times[-1], powers[-1])


@given(
    st.lists(st.floats(0.001, 1.0), min_size=1, max_size=50),
    st.floats(0, 700),
    st.floats(-50, 50),
)
def test_exact_on_linear_power(gaps: list[float], p0: float, slope: float) -> None:
    times = [0.0]
    for gap in gaps:
        times.append(times[-1] + gap)
    exact = p0 * times[-1] + 0.5 * slope * times[-1] ** 2
    estimate = integrate(times, [p0 + slope * t for t in times])
    assert estimate == pytest.approx(exact, rel=1e-9, abs=1e-6)


@given(st.lists(st.tuples(st.floats(0.001, 1.0), st.floats(0, 700)), min_size=2, max_size=40))
def test_additive_over_split_windows(samples: list[tuple[float, float]]) -> None:
    times, powers = [0.0], [samples[0][1]]
    for gap, p in samples[1:]:
        times.append(times[-1] + gap)
        powers.append(p)
    k = len(times) // 2
    whole = integrate(times, powers)
    parts = integrate(times[: k + 1], powers[: k + 1]) + integrate(times[k:], powers[k:])
    assert whole == pytest.approx(parts, rel=1e-12, abs=1e-9)


def test_out_of_order_and_closed_samples_are_ignored() -> None:
    integ = TrapezoidIntegrator()
    integ.add(1.0, 100.0)  # not open yet
    integ.reset(0.0, 100.0)
    integ.add(1.0, 100.0)
    integ.add(0.5, 1e6)  # late sample from another thread
    assert integ.finish(2.0, 100.0) == pytest.approx(200.0)
    integ.add(3.0, 1e6)  # after finish
    assert integ.samples == 3


@given(
    period=st.floats(0.3, 4.0),
    phase=st.floats(0.0, 0.0999),
    amplitude=st.floats(0.0, 100.0),
)
def test_square_wave_error_is_within_half_a_step_per_edge(
    period: float, phase: float, amplitude: float
) -> None:
    """At 100 ms polling each jump of J watts costs at most J x 0.05 s; the ramp is exact but for
    its end kink (20 W/s), which costs at most 20 x 0.1^2 / 4 J."""
    trace = ramp_plus_square(100, 300, 10, amplitude_w=amplitude, period_sec=period)
    dt = 0.1
    times = [phase + k * dt for k in range(101)]
    estimate = integrate(times, [trace.power_w(t) for t in times])
    exact = trace.between(times[0], times[-1])
    edges = math.floor((times[-1]) / (period / 2)) - math.floor(times[0] / (period / 2))
    kink = 20 * dt**2 / 4
    assert abs(estimate - exact) <= (edges + 1) * 2 * amplitude * dt / 2 + kink + 1e-6
