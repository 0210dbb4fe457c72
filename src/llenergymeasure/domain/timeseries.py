"""Columns of the telemetry time series file (Parquet), defined once.

The writer (``energy.timeseries``), the reader (``results.telemetry``) and the tests' factory
all take the names from here, so a file a run writes is a file the report can read. One row is
one sample of one device.
"""

from __future__ import annotations

#: Seconds from the start of the process's measurement window (negative before it). Several
#: processes' files are put on one time origin, the experiment's first window start, by the
#: reader (each result stores its window's start time).
TIME_SEC = "time_sec"
#: Sample number of the telemetry thread (all devices sampled in one tick share it).
TICK = "tick"
#: The raw monotonic clock of the sample (seconds; only differences mean anything).
MONOTONIC_SEC = "monotonic_sec"
DEVICE = "device"  # short label, e.g. 'gpu:0', 'cpu:package-0'
UID = "uid"  # globally unique device id (GPU UUID, host:zone)
KIND = "kind"  # 'gpu', 'cpu' or 'ram'
POWER_W = "power_w"
ENERGY_COUNTER_J = "energy_counter_j"
TEMPERATURE_C = "temperature_c"
SM_CLOCK_MHZ = "sm_clock_mhz"
MEMORY_USED_MB = "memory_used_mb"
UTILIZATION_PCT = "utilization_pct"
#: NVML clock-event (throttle) reason bitmask; null where the device cannot report it.
CLOCK_EVENT_REASONS = "clock_event_reasons"
#: True when a throttling bit is set in the reasons (idle and clock-setting bits are not).
THROTTLED = "throttled"

#: Readings stored as float64 (null when the device cannot report them).
FLOAT_COLUMNS = (
    POWER_W,
    ENERGY_COUNTER_J,
    TEMPERATURE_C,
    SM_CLOCK_MHZ,
    MEMORY_USED_MB,
    UTILIZATION_PCT,
)
#: Every column, in file order.
COLUMNS = (
    TICK,
    TIME_SEC,
    MONOTONIC_SEC,
    DEVICE,
    UID,
    KIND,
    *FLOAT_COLUMNS,
    CLOCK_EVENT_REASONS,
    THROTTLED,
)
#: Names older files used, read as today's: 0.x writers stored ``t_sec`` (from the sampler's
#: start, a few milliseconds before the window's) and early test tables ``timestamp_sec`` and
#: ``throttle_reasons``.
LEGACY_NAMES = {
    "t_sec": TIME_SEC,
    "timestamp_sec": TIME_SEC,
    "throttle_reasons": CLOCK_EVENT_REASONS,
}
