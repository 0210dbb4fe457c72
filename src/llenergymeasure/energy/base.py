"""The energy-meter interface: devices, per-device channels, measurement windows, baselines.

A meter is a set of *channels*, one per measured device (a GPU read through NVML, a RAPL
package, the CPU estimate...). ``begin_window`` / ``end_window`` read every channel at both
edges of a window whose edges the caller synchronises with the device; channels that need
samples in between (power polling, RAPL wrap tracking) are fed by the one telemetry thread.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from llenergymeasure.domain.energy import BaselineInfo, DeviceEnergy, DeviceKind, EnergyMetrics
from llenergymeasure.domain.metrics import Confidence

if TYPE_CHECKING:  # pragma: no cover
    from llenergymeasure.energy.telemetry import TelemetrySampler

#: A source of monotonic seconds (``time.monotonic`` in production, a fake clock in tests).
Clock = Callable[[], float]
#: What the harness passes to synchronise the device before a counter is read.
SyncFn = Callable[[], object]
BaselineMethod = Literal["measured", "cached", "none"]
WindowLabel = Literal["measurement", "baseline"]


@dataclass(frozen=True)
class DeviceRef:
    """Identity of one measured device: globally unique uid, short label, kind, model name."""

    uid: str
    label: str
    kind: DeviceKind
    name: str | None = None


#: Stand-in for a missing clock-event-reason mask in the telemetry table's int64 column.
NO_REASONS = -1
#: Stand-in for a missing float in a telemetry row.
NAN = float("nan")

#: One sample as the telemetry table stores it: TelemetryReading's seven fields in order
#: (the table's columns after tick, time and device), a missing float as NaN and a missing
#: reason mask as NO_REASONS. The telemetry thread records these, so a channel read every tick
#: can hand one over without building a TelemetryReading first.
TelemetryRow = tuple[float, float, float, float, float, float, int]
#: The row of a sample in which the device reported nothing.
EMPTY_ROW: TelemetryRow = (NAN, NAN, NAN, NAN, NAN, NAN, NO_REASONS)


@dataclass(slots=True)
class TelemetryReading:
    """One sample of one device; a field is None when the device cannot report it."""

    power_w: float | None = None
    energy_counter_j: float | None = None
    temperature_c: float | None = None
    sm_clock_mhz: float | None = None
    memory_used_mb: float | None = None
    utilization_pct: float | None = None
    clock_event_reasons: int | None = None

    def row(self) -> TelemetryRow:
        """The reading as the telemetry table stores it (None becomes NaN / NO_REASONS)."""
        nan = NAN
        return (
            nan if self.power_w is None else self.power_w,
            nan if self.energy_counter_j is None else self.energy_counter_j,
            nan if self.temperature_c is None else self.temperature_c,
            nan if self.sm_clock_mhz is None else self.sm_clock_mhz,
            nan if self.memory_used_mb is None else self.memory_used_mb,
            nan if self.utilization_pct is None else self.utilization_pct,
            NO_REASONS if self.clock_event_reasons is None else self.clock_event_reasons,
        )

    @classmethod
    def from_row(cls, row: TelemetryRow) -> TelemetryReading:
        """The reading a stored row stands for (NaN / NO_REASONS become None)."""
        power, energy, temperature, clock, memory, utilization, reasons = row
        return cls(
            power_w=None if math.isnan(power) else power,
            energy_counter_j=None if math.isnan(energy) else energy,
            temperature_c=None if math.isnan(temperature) else temperature,
            sm_clock_mhz=None if math.isnan(clock) else clock,
            memory_used_mb=None if math.isnan(memory) else memory,
            utilization_pct=None if math.isnan(utilization) else utilization,
            clock_event_reasons=None if reasons == NO_REASONS else reasons,
        )


@dataclass
class ChannelEnergy:
    """Energy one channel measured over a window, with its caveats."""

    energy_j: float
    warnings: list[str] = field(default_factory=list)
    #: Lower than the channel's own when this window's reading is doubtful (a stuck counter).
    confidence: Confidence | None = None


class Channel(ABC):
    """One device read by one instrument over a window, optionally sampled for telemetry."""

    device: DeviceRef
    method: str
    confidence: Confidence
    #: Longest gap between samples for a correct figure; None when the edges alone suffice.
    max_poll_interval_sec: float | None = None

    @abstractmethod
    def start(self, t: float) -> None:
        """Open a window at monotonic time ``t`` (read counters now)."""

    @abstractmethod
    def stop(self, t: float) -> ChannelEnergy:
        """Close the window at monotonic time ``t`` and return its energy."""

    def sample_row(self, t: float) -> TelemetryRow | None:
        """Read the device now, as the row the telemetry thread stores (what the thread calls
        each tick); None when the channel has nothing to report."""
        return None

    def sample(self, t: float) -> TelemetryReading | None:
        """``sample_row(t)`` as a reading (None fields for what was not read)."""
        row = self.sample_row(t)
        return None if row is None else TelemetryReading.from_row(row)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the channel holds (file descriptors, library sessions)."""


class TrapezoidIntegrator:
    """Energy from (time, power) samples by the trapezoid rule; thread-safe, in-order only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._last_t = 0.0
        self._last_p = 0.0
        self._energy_j = 0.0
        self.samples = 0

    def reset(self, t: float, power_w: float) -> None:
        """Start integrating from a first sample."""
        with self._lock:
            self._open = True
            self._last_t, self._last_p = t, power_w
            self._energy_j = 0.0
            self.samples = 1

    def add(self, t: float, power_w: float) -> None:
        """Add a sample; ignored when closed or not later than the previous one."""
        with self._lock:
            if not self._open or t <= self._last_t:
                return
            self._energy_j += 0.5 * (self._last_p + power_w) * (t - self._last_t)
            self._last_t, self._last_p = t, power_w
            self.samples += 1

    def finish(self, t: float, power_w: float) -> float:
        """Add the closing sample, close, and return the energy in joules."""
        self.add(t, power_w)
        with self._lock:
            self._open = False
            return self._energy_j


#: Relative difference under which raw and idle energy count as equal (float rounding, e.g. a
#: constant estimate whose baseline is the same power: 0.3 J against 0.1 W x 3 s).
FLOOR_RTOL = 1e-6


def below_idle(energy_j: float, idle_j: float) -> bool:
    """True when raw energy is below idle energy by more than rounding (worth a warning)."""
    return energy_j < idle_j and not math.isclose(
        energy_j, idle_j, rel_tol=FLOOR_RTOL, abs_tol=1e-9
    )


@dataclass(frozen=True)
class Baseline:
    """Idle power per device (by uid), and whether it was measured now, cached, or not at all."""

    power_w: Mapping[str, float]
    method: BaselineMethod
    duration_sec: float = 0.0
    measured_at_unix: float | None = None
    warnings: tuple[str, ...] = ()
    #: Power samples taken during the idle window (None: unknown, e.g. an old cache entry).
    samples: int | None = None
    #: Rest after the last work before the idle window began.
    settle_sec: float = 0.0

    def info(self, window_start_unix: float | None = None) -> BaselineInfo | None:
        """How this baseline was obtained, for the result (None when there is none)."""
        if self.method == "none":
            return None
        age = None
        if window_start_unix is not None and self.measured_at_unix is not None:
            age = max(0.0, window_start_unix - self.measured_at_unix)
        return BaselineInfo(
            method=self.method,
            duration_sec=max(0.0, self.duration_sec),
            samples=self.samples,
            settle_sec=self.settle_sec,
            measured_at=datetime.fromtimestamp(self.measured_at_unix, timezone.utc)
            if self.measured_at_unix is not None
            else None,
            age_sec=age,
        )

    @classmethod
    def none(cls, reason: str | None = None) -> Baseline:
        """No baseline (disabled or impossible); raw energy only."""
        return cls(power_w={}, method="none", warnings=(reason,) if reason else ())

    def describe(self) -> str:
        """One line: the method and each device's idle power."""
        if self.method == "none":
            return "no idle baseline"
        parts = ", ".join(f"{uid}: {w:.2f} W" for uid, w in self.power_w.items())
        samples = f", {self.samples} samples" if self.samples is not None else ""
        return (
            f"idle baseline ({self.method}, {self.duration_sec:.1f} s{samples} after "
            f"{self.settle_sec:g} s at rest): {parts}"
        )


@dataclass
class EnergyWindow:
    """What a meter measured between ``begin_window`` and ``end_window``.

    ``devices`` hold raw energy; ``apply_baseline`` (or ``to_energy_metrics(baseline)``) fills
    each device's idle power and idle-adjusted energy beside the raw figure and appends the
    baseline's caveats to ``warnings``. ``warnings`` already includes the meter's own warnings
    (instrument choice, instruments skipped), so a result needs only this list.
    """

    devices: list[DeviceEnergy]
    duration_sec: float
    warnings: list[str]
    start_monotonic_sec: float
    end_monotonic_sec: float
    baseline_method: BaselineMethod = "none"
    #: Wall-clock start (Unix seconds), for the age of the baseline applied.
    start_unix_sec: float | None = None
    _applied: Baseline | None = field(default=None, repr=False)

    def apply_baseline(self, baseline: Baseline | None) -> EnergyWindow:
        """Fill idle power and adjusted energy per device (in place; idempotent); returns self."""
        if baseline is None or baseline is self._applied:
            return self
        if self._applied is not None:
            raise ValueError("a different baseline was already applied to this window")
        self._applied = baseline
        self.warnings.extend(w for w in baseline.warnings if w not in self.warnings)
        if baseline.method == "none":
            return self
        missing = [d.label for d in self.devices if d.uid not in baseline.power_w]
        if missing:
            self.warnings.append(
                f"no idle baseline for {', '.join(missing)}; adjusted energy is not reported"
            )
            return self
        adjusted_devices = []
        for device in self.devices:
            idle_w = float(baseline.power_w[device.uid])
            idle_j = idle_w * self.duration_sec
            if below_idle(device.energy_j, idle_j):
                self.warnings.append(
                    f"{device.label}: idle-adjusted energy floored at 0 J (raw "
                    f"{device.energy_j:.3f} J < idle {idle_w:.2f} W x {self.duration_sec:.3f} s); "
                    "the baseline is higher than the load, so it was not at rest or it drifted"
                )
            adjusted_devices.append(
                device.model_copy(
                    update={
                        "baseline_power_w": idle_w,
                        "adjusted_energy_j": max(0.0, device.energy_j - idle_j),
                    }
                )
            )
        self.devices = adjusted_devices
        self.baseline_method = baseline.method
        return self

    def to_energy_metrics(self, baseline: Baseline | None = None) -> EnergyMetrics:
        """The window as the result's EnergyMetrics (raw, and idle-adjusted when a baseline)."""
        self.apply_baseline(baseline)
        applied = self._applied
        return EnergyMetrics.from_devices(
            self.devices,
            self.duration_sec,
            baseline_method=self.baseline_method,
            baseline_info=applied.info(self.start_unix_sec) if applied is not None else None,
        )

    def energy_j(self, label_or_uid: str) -> float:
        """Raw joules of one device, found by label or uid."""
        for d in self.devices:
            if label_or_uid in (d.label, d.uid):
                return d.energy_j
        raise KeyError(label_or_uid)


class EnergyMeter(ABC):
    """Measures per-device energy over windows whose edges the caller synchronises."""

    #: Why instruments were chosen or skipped; copied into every window's warnings.
    warnings: list[str]
    clock: Clock

    def __init__(self, *, clock: Clock | None = None, warnings: Sequence[str] = ()) -> None:
        self.clock = clock or time.monotonic
        self.warnings = list(warnings)
        self._sampler: TelemetrySampler | None = None
        self._open_at: float | None = None
        self._open_unix: float | None = None
        self._label: WindowLabel = "measurement"

    @property
    @abstractmethod
    def devices(self) -> list[DeviceRef]:
        """The devices this meter measures."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming each instrument and its devices, e.g. 'rapl (cpu:package-0)'."""

    @abstractmethod
    def _start(self, t0: float) -> None:
        """Read every device at the window's start (monotonic time ``t0``)."""

    @abstractmethod
    def _stop(self, t1: float) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        """Read every device at the end: devices, a duration of the instrument's own (None:
        ours), caveats."""

    def _after_stop(self) -> None:  # noqa: B027 - optional hook
        """Runs after ``_stop``, even when it failed (e.g. stop a helper thread)."""

    @property
    def window_open(self) -> bool:
        """True between begin_window and end_window."""
        return self._open_at is not None

    def begin_window(
        self, sync: SyncFn | None = None, *, label: WindowLabel = "measurement"
    ) -> None:
        """Synchronise (``sync()``), then read every device's counter."""
        if self._open_at is not None:
            raise RuntimeError("begin_window called twice without end_window")
        if sync is not None:
            sync()
        t0 = self.clock()
        self._open_at, self._label = t0, label
        self._open_unix = time.time()
        try:
            self._start(t0)
        except BaseException:
            self._open_at = None
            raise
        if self._sampler is not None:
            self._sampler.window_began(label, t0)

    def end_window(
        self, sync: SyncFn | None = None, *, baseline: Baseline | None = None
    ) -> EnergyWindow:
        """Synchronise, read every device again, and return the window's energy."""
        if self._open_at is None:
            raise RuntimeError("end_window called without begin_window")
        if sync is not None:
            sync()
        t1 = self.clock()
        t0, self._open_at = self._open_at, None
        try:
            devices, duration, notes = self._stop(t1)
        finally:
            self._after_stop()
            if self._sampler is not None:
                self._sampler.window_ended(self._label, t1)
        window = EnergyWindow(
            devices=devices,
            duration_sec=duration if duration is not None else t1 - t0,
            warnings=[*self.warnings, *notes],
            start_monotonic_sec=t0,
            end_monotonic_sec=t1,
            start_unix_sec=self._open_unix,
        )
        return window.apply_baseline(baseline)

    def telemetry_channels(self) -> list[Channel]:
        """Channels the telemetry thread should sample (none for library adapters)."""
        return []

    def attach_sampler(self, sampler: TelemetrySampler | None) -> None:
        """Let a telemetry sampler feed this meter, so one thread serves both (None: detach)."""
        self._sampler = sampler

    @property
    def attached_sampler(self) -> TelemetrySampler | None:
        """The sampler told about this meter's windows, if any."""
        return self._sampler

    def sampler_state_changed(self) -> None:  # noqa: B027 - optional hook
        """Called by an attached sampler when it starts or stops."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the instruments."""

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
