"""Time intervals: their union, and the throttled intervals a result stores.

Throttling is stored as intervals (start, end, cause) rather than one timestamp per sample, so an
hour of throttling is a handful of numbers, and several processes' throttling merges exactly:
every interval on one time origin (the experiment's first window start), the duration the
length of the union.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator

from llenergymeasure.domain.base import DomainModel

Span = tuple[float, float]

#: What lowered the clocks, from the NVML clock-event reason bits (one name per bit).
ThrottleCause = Literal["sw_power_cap", "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake"]

#: Gaps shorter than this (seconds) are float rounding, not a pause.
GAP_TOLERANCE_SEC = 1e-6


def merge_intervals(spans: Iterable[Span]) -> list[Span]:
    """Union of intervals: overlapping or touching ones joined, sorted by start."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + GAP_TOLERANCE_SEC:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def union_sec(spans: Iterable[Span]) -> float:
    """Total time covered by at least one interval (overlaps counted once)."""
    return math.fsum(end - start for start, end in merge_intervals(spans))


class ThrottleInterval(DomainModel):
    """A span during which a device lowered its clocks for one cause."""

    start_sec: float = Field(description="Seconds from the experiment's first window start.")
    end_sec: float
    cause: ThrottleCause

    @model_validator(mode="after")
    def _ordered(self) -> ThrottleInterval:
        if not self.end_sec >= self.start_sec:
            raise ValueError(f"end_sec {self.end_sec} is before start_sec {self.start_sec}")
        return self

    def shifted(self, offset_sec: float) -> ThrottleInterval:
        """The same interval on a time origin ``offset_sec`` earlier."""
        return ThrottleInterval(
            start_sec=self.start_sec + offset_sec,
            end_sec=self.end_sec + offset_sec,
            cause=self.cause,
        )


def merge_throttle_intervals(intervals: Iterable[ThrottleInterval]) -> list[ThrottleInterval]:
    """Per cause, overlapping or touching intervals joined; sorted by start, then cause."""
    by_cause: dict[str, list[Span]] = {}
    for i in intervals:
        by_cause.setdefault(i.cause, []).append((i.start_sec, i.end_sec))
    merged = [
        ThrottleInterval(start_sec=a, end_sec=b, cause=cause)  # type: ignore[arg-type]
        for cause, spans in by_cause.items()
        for a, b in merge_intervals(spans)
    ]
    return sorted(merged, key=lambda i: (i.start_sec, i.cause))
