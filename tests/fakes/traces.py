"""Scripted device traces with their exact integrals, to check meters against analytic energy."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Trace = Callable[[float], float]


@dataclass(frozen=True)
class PowerTrace:
    """Power (W) as a function of trace time, and its exact integral from 0 (J)."""

    power_w: Trace
    energy_j: Trace

    def between(self, t0: float, t1: float) -> float:
        """Exact energy over [t0, t1]."""
        return self.energy_j(t1) - self.energy_j(t0)


def constant(watts: float) -> PowerTrace:
    return PowerTrace(lambda t: watts, lambda t: watts * max(0.0, t))


def ramp_plus_square(
    start_w: float = 100.0,
    end_w: float = 300.0,
    ramp_sec: float = 10.0,
    amplitude_w: float = 50.0,
    period_sec: float = 1.3,
) -> PowerTrace:
    """A linear ramp start_w -> end_w over ramp_sec (flat after), plus a +-amplitude square wave
    (high in the first half of each period)."""
    slope = (end_w - start_w) / ramp_sec
    half = period_sec / 2

    def ramp(t: float) -> float:
        return start_w + slope * min(max(t, 0.0), ramp_sec)

    def square(t: float) -> float:
        return amplitude_w if (t % period_sec) < half else -amplitude_w

    def ramp_energy(t: float) -> float:
        t = max(t, 0.0)
        r = min(t, ramp_sec)
        return start_w * r + 0.5 * slope * r * r + end_w * max(0.0, t - ramp_sec)

    def square_energy(t: float) -> float:
        t = max(t, 0.0)
        phase = t - period_sec * math.floor(t / period_sec)
        # whole periods integrate to 0; the partial one: +A for up to `half`, then -A
        return amplitude_w * min(phase, half) - amplitude_w * max(0.0, phase - half)

    return PowerTrace(lambda t: ramp(t) + square(t), lambda t: ramp_energy(t) + square_energy(t))


def steps(*points: tuple[float, int]) -> Callable[[float], int]:
    """A piecewise-constant integer trace: value v from time t on, for each (t, v) in order."""
    ordered = sorted(points)

    def value(t: float) -> int:
        current = 0
        for start, v in ordered:
            if t >= start:
                current = v
        return current

    return value
