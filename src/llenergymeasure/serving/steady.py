"""The steady-state window of a serving run, and the energy and tokens that fall inside it.

**The rule.** Load ramps up from the first request sent, and drains once the last one is sent.
By Little's law the number of requests in flight reaches its steady level about one request
lifetime after the load starts, so the steady window runs from the first send plus the median
end-to-end latency, to the last send. If that leaves less than ``min_share`` of the run (a short
run, or every request sent at once), there is no steady state and the whole run is used, with a
warning that says so.

**Energy in a window** comes from the meter's reading over the whole run, split by the
telemetry samples: the share of the run's sampled energy that falls in the window (counter
samples interpolated at the window's edges, or power integrated by the trapezoid rule).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    start_sec: float
    end_sec: float
    steady: bool  # False: the whole run (no steady state found)
    rule: str

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec


def steady_window(
    sent_sec: Sequence[float],
    finish_sec: Sequence[float],
    *,
    min_share: float = 0.2,
) -> Window:
    """The steady-state window of requests sent at ``sent_sec`` and finished at ``finish_sec``."""
    if not sent_sec:
        raise ValueError("no requests")
    run_start, run_end = min(sent_sec), max([*finish_sec, *sent_sec])
    e2e = [f - s for s, f in zip(sent_sec, finish_sec, strict=True)]
    start = run_start + statistics.median(e2e)
    end = max(sent_sec)
    span = run_end - run_start
    if span > 0 and end - start >= min_share * span:
        return Window(start, end, True, "first send + median E2E .. last send")
    return Window(run_start, run_end, False, "whole run (no steady state)")


def tokens_in_window(
    token_times_sec: Sequence[Sequence[float]],
    first_last: Sequence[tuple[float | None, float | None, int]],
    window: Window,
) -> float:
    """Output tokens produced inside the window.

    A request with every token's time counts those inside; one with only its first and last
    token times (and its token count) is spread evenly between them.
    """
    total = 0.0
    for times, (first, last, n) in zip(token_times_sec, first_last, strict=True):
        if times:
            total += sum(window.start_sec <= t <= window.end_sec for t in times)
        elif n and first is not None and last is not None:
            if last <= first:
                total += n if window.start_sec <= first <= window.end_sec else 0
            else:
                overlap = min(last, window.end_sec) - max(first, window.start_sec)
                total += n * max(0.0, overlap) / (last - first)
    return total


def counter_energy_j(
    times_sec: Sequence[float], counter_j: Sequence[float], t0: float, t1: float
) -> float:
    """Energy between t0 and t1 from cumulative counter samples, interpolated at the edges.

    An edge outside the samples (the sampler's last tick comes a little before the window's
    end) is extrapolated at the mean power of the nearest sample interval, not clamped.
    """
    t = np.asarray(times_sec, dtype=float)
    e = np.asarray(counter_j, dtype=float)
    return _counter_at(t, e, t1) - _counter_at(t, e, t0)


def _counter_at(t: np.ndarray, e: np.ndarray, at: float) -> float:
    if len(t) >= 2 and at > t[-1] and t[-1] > t[-2]:
        return float(e[-1] + (e[-1] - e[-2]) / (t[-1] - t[-2]) * (at - t[-1]))
    if len(t) >= 2 and at < t[0] and t[1] > t[0]:
        return float(e[0] - (e[1] - e[0]) / (t[1] - t[0]) * (t[0] - at))
    return float(np.interp(at, t, e))


def power_energy_j(
    times_sec: Sequence[float], power_w: Sequence[float], t0: float, t1: float
) -> float:
    """Energy between t0 and t1 from power samples (trapezoid; edges interpolated)."""
    t = np.asarray(times_sec, dtype=float)
    p = np.asarray(power_w, dtype=float)
    inside = (t > t0) & (t < t1)
    grid = np.concatenate(([t0], t[inside], [t1]))
    values = np.interp(grid, t, p)
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid)))


def window_share(sampled_whole_j: float, sampled_window_j: float) -> float:
    """The window's share of the run's sampled energy (0 when nothing was sampled)."""
    return sampled_window_j / sampled_whole_j if sampled_whole_j > 0 else 0.0
