"""Pure analysis of the GPU check's recordings: integrals, counter updates, step delays.

tests/test_gpu_check.py checks these (hypothesis properties against exact answers).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from datetime import datetime

Samples = list[tuple[float, float]]  # (seconds, watts) in time order


def parse_smi_line(line: str) -> tuple[float, float] | None:
    """(wall-clock seconds, watts) of one ``timestamp, power.draw`` CSV line; None if not one."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 2:
        return None
    try:
        wall = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        watts = float(parts[1])
    except ValueError:  # "[N/A]", a header, a partial line
        return None
    return wall, watts


def integrate_clipped(samples: Samples, t0: float, t1: float) -> float | None:
    """Energy (J) of power samples over [t0, t1]: trapezoid rule, linear interpolation at the
    edges; None when the samples do not cover both edges."""
    if t1 <= t0 or len(samples) < 2 or samples[0][0] > t0 or samples[-1][0] < t1:
        return None

    def at(t: float) -> float:
        for (ta, pa), (tb, pb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
        raise AssertionError("covered above")

    points = [(t0, at(t0)), *[(t, p) for t, p in samples if t0 < t < t1], (t1, at(t1))]
    pairs = itertools.pairwise(points)
    return math.fsum(0.5 * (pa + pb) * (tb - ta) for (ta, pa), (tb, pb) in pairs)


def counter_updates(times: Sequence[float], counter_mj: Sequence[float]) -> list[float]:
    """The times at which a cumulative counter was seen to change."""
    return [t for i, t in enumerate(times) if i and counter_mj[i] != counter_mj[i - 1]]


def update_periods(change_times: Sequence[float]) -> list[float]:
    """Intervals between successive counter changes."""
    return [b - a for a, b in itertools.pairwise(change_times)]


def counter_power(times: Sequence[float], counter_mj: Sequence[float]) -> Samples:
    """Power (W) implied by a cumulative mJ counter, stamped at the end of each update."""
    changes = [i for i in range(1, len(times)) if counter_mj[i] != counter_mj[i - 1]]
    out: Samples = []
    for a, b in itertools.pairwise(changes):
        dt = times[b] - times[a]
        if dt > 0:
            out.append((times[b], (counter_mj[b] - counter_mj[a]) / 1000.0 / dt))
    return out


def step_delay(
    samples: Samples, edge: float, before: tuple[float, float], after: tuple[float, float]
) -> float | None:
    """Seconds from ``edge`` until the readings cross halfway between their median level in
    ``before`` and in ``after`` (two (start, end) spans); None when no clear step or no crossing."""
    lo = [p for t, p in samples if before[0] <= t <= before[1]]
    hi = [p for t, p in samples if after[0] <= t <= after[1]]
    if not lo or not hi:
        return None
    a, b = statistics.median(lo), statistics.median(hi)
    if abs(b - a) < 1e-9 or abs(b - a) < 0.05 * max(abs(a), abs(b)):
        return None
    half = (a + b) / 2
    for t, p in samples:
        if t >= edge and (p - half) * (b - a) >= 0:
            return t - edge
    return None


def relative_diff(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / reference, None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference


def median_step(times: Sequence[float]) -> float | None:
    steps = update_periods(list(times))
    return statistics.median(steps) if steps else None


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_in(samples: Samples, span: tuple[float, float]) -> float | None:
    inside = [p for t, p in samples if span[0] <= t <= span[1]]
    return statistics.median(inside) if inside else None
