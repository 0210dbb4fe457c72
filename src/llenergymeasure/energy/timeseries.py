"""What the telemetry thread recorded: the time series, its Parquet file, and throttling.

Rows are one sample of one device, stored in typed arrays (8 bytes a value: an hour of 8 GPUs at
10 Hz is ~25 MB), a missing float as NaN and a missing reason mask as -1. A tick's throttle
state holds until the next tick, so the throttled duration is exact to within one sample
interval; throttled intervals and timestamps are seconds from the measurement window's start.
"""

from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.domain import timeseries as col
from llenergymeasure.domain.intervals import (
    ThrottleCause,
    ThrottleInterval,
    merge_intervals,
    union_sec,
)
from llenergymeasure.domain.metrics import (
    THROTTLING_REASONS_MASK,
    ThermalThrottleInfo,
    throttle_causes,
)
from llenergymeasure.energy.base import NO_REASONS, DeviceRef
from llenergymeasure.files import atomic_write

#: Raw columns the sampler appends to, in order (the file's columns: domain.timeseries).
COLUMNS = (
    "tick",
    "monotonic_sec",
    "device_index",
    "power_w",
    "energy_counter_j",
    "temperature_c",
    "sm_clock_mhz",
    "memory_used_mb",
    "utilization_pct",
    "clock_event_reasons",
)
FLOAT_COLUMNS = col.FLOAT_COLUMNS
#: The columns a channel's sample fills, in TelemetryRow's order (base.TelemetryReading).
READING_COLUMNS = COLUMNS[3:]


def empty_columns() -> dict[str, array]:
    """Typed, growable columns: int64 for tick/device/reasons, float64 for the rest."""
    return {
        name: array("d") if name in FLOAT_COLUMNS or name == "monotonic_sec" else array("q")
        for name in COLUMNS
    }


def _value(column: str, raw: float) -> Any:
    """A stored value as the reader sees it: None for a missing one."""
    if column == "clock_event_reasons":
        return None if raw == NO_REASONS else int(raw)
    if isinstance(raw, float) and math.isnan(raw):
        return None
    return raw


@dataclass
class Telemetry:
    """The samples of one sampler run, with the meter windows that happened during it."""

    devices: list[DeviceRef]
    columns: dict[str, array]
    tick_times: list[float]
    windows: list[tuple[str, float, float]]
    interval_sec: float
    start_monotonic_sec: float
    stop_monotonic_sec: float
    thread_cpu_sec: float = 0.0
    thread_wall_sec: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Number of (tick, device) samples."""
        return len(self.columns["tick"])

    @property
    def cpu_share_of_core(self) -> float:
        """CPU time of the thread as a share of one core over its life (0.01 = 1%)."""
        return self.thread_cpu_sec / self.thread_wall_sec if self.thread_wall_sec > 0 else 0.0

    @property
    def measurement_window(self) -> tuple[float, float] | None:
        """(start, end) of the last measurement window seen, in monotonic seconds."""
        for label, t0, t1 in reversed(self.windows):
            if label == "measurement":
                return t0, t1
        return None

    @property
    def thermal(self) -> ThermalThrottleInfo:
        """Throttling over the measurement window (or the whole run when there was none)."""
        start, end = self.measurement_window or (
            self.start_monotonic_sec,
            self.stop_monotonic_sec,
        )
        return self.thermal_between(start, end)

    def series(self, device: str, column: str) -> tuple[list[float], list[Any]]:
        """(monotonic times, values) of one column for one device (by label or uid)."""
        indices = {i for i, d in enumerate(self.devices) if device in (d.label, d.uid)}
        if not indices:
            raise KeyError(device)
        c = self.columns
        picked = [k for k, idx in enumerate(c["device_index"]) if idx in indices]
        values = [_value(column, c[column][k]) for k in picked]
        return [c["monotonic_sec"][k] for k in picked], values

    def thermal_between(self, start: float, end: float) -> ThermalThrottleInfo:
        """Throttle flags, duration, max temperature and timestamps for [start, end]."""
        c = self.columns
        tick_mask: dict[int, int] = {}
        max_temperature: float | None = None
        for tick, t, reasons, temp in zip(
            c["tick"], c["monotonic_sec"], c["clock_event_reasons"], c["temperature_c"], strict=True
        ):
            if reasons != NO_REASONS:
                tick_mask[tick] = tick_mask.get(tick, 0) | int(reasons)
            if not math.isnan(temp) and start <= t <= end:
                max_temperature = temp if max_temperature is None else max(max_temperature, temp)
        times = self.tick_times
        mask_in_window = 0
        pieces: dict[ThrottleCause, list[tuple[float, float]]] = {}
        for k, t_k in enumerate(times):
            mask = tick_mask.get(k, 0)
            seg_end = times[k + 1] if k + 1 < len(times) else max(end, t_k)
            overlap = min(seg_end, end) - max(t_k, start)
            if overlap < 0 or (overlap == 0 and not start <= t_k <= end):
                continue
            mask_in_window |= mask
            span = (max(t_k, start) - start, min(seg_end, end) - start)
            for cause in throttle_causes(mask & THROTTLING_REASONS_MASK):
                pieces.setdefault(cause, []).append(span)
        intervals = sorted(
            (
                ThrottleInterval(start_sec=a, end_sec=b, cause=cause)
                for cause, spans in pieces.items()
                for a, b in merge_intervals(spans)  # an hour throttled: one interval, not 36k
            ),
            key=lambda i: (i.start_sec, i.cause),
        )
        flags = ThermalThrottleInfo.from_reasons(mask_in_window)
        return ThermalThrottleInfo(
            sw_thermal=flags.sw_thermal,
            hw_thermal=flags.hw_thermal,
            hw_power=flags.hw_power,
            thermal=flags.thermal,
            power=flags.power,
            throttle_duration_sec=union_sec((i.start_sec, i.end_sec) for i in intervals),
            max_temperature_c=max_temperature,
            throttle_timestamps=sorted({i.start_sec for i in intervals}),
            throttle_intervals=intervals,
        )

    def to_table(self) -> Any:
        """The samples as a pyarrow Table, one row per sample and device."""
        import numpy as np
        import pyarrow as pa

        c = {
            name: np.frombuffer(values, dtype=values.typecode)
            for name, values in self.columns.items()
        }
        index = c["device_index"]

        def labels(attr: str) -> Any:
            names = pa.array([getattr(d, attr) for d in self.devices], pa.string())
            return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), names)

        reasons = c["clock_event_reasons"]
        missing = reasons == NO_REASONS
        arrays = {
            col.TICK: pa.array(c["tick"].astype(np.int32)),
            col.TIME_SEC: pa.array(c["monotonic_sec"] - self.time_origin_monotonic_sec),
            col.MONOTONIC_SEC: pa.array(c["monotonic_sec"]),
            col.DEVICE: labels("label"),
            col.UID: labels("uid"),
            col.KIND: labels("kind"),
            **{name: pa.array(c[name], mask=np.isnan(c[name])) for name in col.FLOAT_COLUMNS},
            col.CLOCK_EVENT_REASONS: pa.array(reasons, mask=missing),
            col.THROTTLED: pa.array((reasons & THROTTLING_REASONS_MASK) != 0, mask=missing),
        }
        assert tuple(arrays) == col.COLUMNS, "the file's columns are defined in domain.timeseries"
        table = pa.table(arrays)
        return table.replace_schema_metadata({"llenergymeasure": json.dumps(self.metadata())})

    @property
    def time_origin_monotonic_sec(self) -> float:
        """Where the file's time axis starts: the measurement window (else the sampler) start."""
        window = self.measurement_window
        return window[0] if window is not None else self.start_monotonic_sec

    def metadata(self) -> dict[str, Any]:
        """Context stored beside the rows: interval, windows, devices, the thread's cost."""
        return {
            "time_origin": "measurement window start"
            if self.measurement_window is not None
            else "sampler start",
            "time_origin_monotonic_sec": self.time_origin_monotonic_sec,
            "interval_sec": self.interval_sec,
            "start_monotonic_sec": self.start_monotonic_sec,
            "stop_monotonic_sec": self.stop_monotonic_sec,
            "windows": [
                {"label": label, "start_monotonic_sec": t0, "end_monotonic_sec": t1}
                for label, t0, t1 in self.windows
            ],
            "devices": [
                {"uid": d.uid, "label": d.label, "kind": d.kind, "name": d.name}
                for d in self.devices
            ],
            "thread_cpu_sec": self.thread_cpu_sec,
            "thread_wall_sec": self.thread_wall_sec,
        }

    def write_parquet(self, path: str | Path) -> Path:
        """Write the samples to a Parquet file atomically; returns the path."""
        import pyarrow.parquet as pq

        return atomic_write(path, lambda tmp: pq.write_table(self.to_table(), tmp))


def read_parquet_metadata(path: str | Path) -> dict[str, Any]:
    """The llenergymeasure metadata stored in a telemetry Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"llenergymeasure"])
