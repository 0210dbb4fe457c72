"""Read an experiment's telemetry time series (Parquet) and find when the devices throttled.

The columns are those of ``domain.timeseries`` (the writer's): ``time_sec`` (seconds from the
process's window start), ``device``, ``power_w``, ``temperature_c`` and ``clock_event_reasons``
(NVML bitmask); older names are read as today's. Every process's file is put on one time
origin, the experiment's first window start. Any column but the time may be missing or null;
what cannot be drawn is said in ``Telemetry.notes``, never guessed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.domain import timeseries as col
from llenergymeasure.domain.intervals import merge_intervals
from llenergymeasure.domain.metrics import THROTTLING_REASONS_MASK
from llenergymeasure.domain.stats import percentile
from llenergymeasure.results.collection import LoadedResult

Interval = tuple[float, float]


@dataclass(frozen=True)
class DeviceTrace:
    """One device's samples in time order; a missing reading is NaN."""

    device: str
    time_sec: list[float]
    power_w: list[float]
    temperature_c: list[float]


@dataclass
class Telemetry:
    """The traces of one experiment, the throttled intervals, and what could not be read."""

    traces: list[DeviceTrace] = field(default_factory=list)
    throttled: list[Interval] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def has(self, quantity: str) -> bool:
        """Whether any trace has at least one reading of ``power_w`` or ``temperature_c``."""
        return any(not math.isnan(v) for t in self.traces for v in getattr(t, quantity))

    @property
    def throttled_sec(self) -> float:
        """Total time inside the throttled intervals."""
        return math.fsum(end - start for start, end in self.throttled)


def sample_period(times: list[float]) -> float:
    """Median gap between consecutive distinct sample times (0.0 for fewer than two)."""
    ordered = sorted(set(times))
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    return percentile(gaps, 50) if gaps else 0.0


def throttled_intervals(
    times: list[float], reasons: list[int | None], period_sec: float
) -> list[Interval]:
    """Intervals during which one device throttled.

    A sample whose reasons have a throttling bit covers the time up to the device's next sample
    (the last sample covers one sample period). Null reasons count as not throttled.
    """
    pairs = sorted(zip(times, reasons, strict=True), key=lambda p: p[0])
    spans = []
    for i, (t, mask) in enumerate(pairs):
        if mask and int(mask) & THROTTLING_REASONS_MASK:
            end = pairs[i + 1][0] if i + 1 < len(pairs) else t + period_sec
            spans.append((t, end))
    return merge_intervals(spans)


def _floats(values: list[Any] | None, n: int) -> list[float]:
    if values is None:
        return [math.nan] * n
    return [math.nan if v is None else float(v) for v in values]


def _read(path: Path, telemetry: Telemetry) -> dict[str, list[Any]] | None:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        telemetry.notes.append(f"telemetry file {path} cannot be read ({type(exc).__name__})")
        return None
    data: dict[str, list[Any]] = {}
    for name in table.column_names:
        current = col.LEGACY_NAMES.get(name, name)
        if current not in data or name == current:
            data[current] = table.column(name).to_pylist()
    if col.TIME_SEC not in data:
        telemetry.notes.append(f"telemetry file {path} has no {col.TIME_SEC} column")
        return None
    return data


def _files(item: LoadedResult) -> list[tuple[Path, float]]:
    """Each telemetry file once, with its process's window start from the experiment's."""
    result = item.result
    found: dict[str, float] = {}
    for p in result.process_results:
        if p.timeseries_file and p.timeseries_file not in found:
            found[p.timeseries_file] = (p.start_time - result.start_time).total_seconds()
    return [(item.directory / name, offset) for name, offset in found.items()]


def load_telemetry(item: LoadedResult) -> Telemetry | None:
    """The experiment's telemetry, or None when its result names no time series file."""
    files = _files(item)
    if not files:
        return None
    telemetry = Telemetry()
    spans: list[Interval] = []
    have_reasons = False
    all_times: list[float] = []
    for path, offset in files:
        if not path.is_file():
            telemetry.notes.append(f"telemetry file {path} is named in the result but missing")
            continue
        data = _read(path, telemetry)
        if data is None:
            continue
        stamps_sec = data[col.TIME_SEC]
        n = len(stamps_sec)
        devices = data.get(col.DEVICE) or [None] * n
        power = _floats(data.get(col.POWER_W), n)
        temperature = _floats(data.get(col.TEMPERATURE_C), n)
        reasons = data.get(col.CLOCK_EVENT_REASONS) or [None] * n
        have_reasons = have_reasons or any(r is not None for r in reasons)
        rows: dict[str, list[int]] = {}
        for i, (t, device) in enumerate(zip(stamps_sec, devices, strict=True)):
            if t is not None and math.isfinite(t):
                rows.setdefault(str(device) if device is not None else "device", []).append(i)
        for device, indices in rows.items():
            indices.sort(key=lambda i: stamps_sec[i])
            times = [float(stamps_sec[i]) + offset for i in indices]
            all_times += times
            telemetry.traces.append(
                DeviceTrace(
                    device=device,
                    time_sec=times,
                    power_w=[power[i] for i in indices],
                    temperature_c=[temperature[i] for i in indices],
                )
            )
            period = sample_period(times)
            spans += throttled_intervals(times, [reasons[i] for i in indices], period)
    thermal = item.result.thermal
    if not have_reasons and telemetry.traces and thermal.throttle_intervals:
        spans = [(i.start_sec, i.end_sec) for i in thermal.throttle_intervals]
        telemetry.notes.append(
            f"no {col.CLOCK_EVENT_REASONS} in the telemetry: throttled intervals drawn from "
            "the result's throttle intervals"
        )
    elif not have_reasons and thermal.throttle_timestamps and telemetry.traces:
        period = sample_period(all_times)
        spans = [(t, t + period) for t in thermal.throttle_timestamps]
        telemetry.notes.append(
            f"no {col.CLOCK_EVENT_REASONS} in the telemetry: throttled intervals drawn from "
            "the result's throttle timestamps"
        )
    telemetry.throttled = merge_intervals(spans)
    telemetry.traces.sort(key=lambda t: t.device)
    return telemetry
