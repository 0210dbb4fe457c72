"""NVML channels: the GPU's total-energy counter where it has one, else integrated power polls.

Counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver loaded): exact between
two reads, confidence high. Without it (pre-Volta GPUs, some vGPUs) ``nvmlDeviceGetPowerUsage``
(mW) is polled by the telemetry thread and integrated with the trapezoid rule, confidence medium.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from llenergymeasure.domain.metrics import Confidence
from llenergymeasure.energy.base import (
    EMPTY_ROW,
    Channel,
    ChannelEnergy,
    DeviceRef,
    TelemetryRow,
    TrapezoidIntegrator,
)
from llenergymeasure.energy.devices import NvmlGpu
from llenergymeasure.energy.nvml_api import (
    Nvml,
    NvmlError,
    NvmlNoPermission,
    NvmlNotSupported,
    translate_nvml_error,
)
from llenergymeasure.errors import InstrumentError

#: Assumed update period of NVML's energy counter (measured 20-100 ms on Volta..Hopper).
COUNTER_UPDATE_SEC = 0.1
#: A window shorter than this many counter updates (or holding fewer power samples) is flagged.
MIN_UPDATES_PER_WINDOW = 10

_CLOCKS_EVENT_REASONS = "nvmlDeviceGetCurrentClocksEventReasons"
_CLOCKS_THROTTLE_REASONS = "nvmlDeviceGetCurrentClocksThrottleReasons"  # pre-12.535 name
_MIB = float(2**20)


class _TelemetryRead(NamedTuple):
    """One NVML read of a telemetry tick."""

    field: str  # its name in messages
    binding: str  # the NVML function
    column: int  # where its value goes in the TelemetryRow
    convert: Callable[[Any], float]  # NVML's value -> the row's unit
    slow: bool  # read only every SLOW_FIELDS_EVERY_SEC


#: Telemetry reads in the order they are made each tick (slots of NvmlChannel._reads).
_READS = (
    _TelemetryRead("power", "nvmlDeviceGetPowerUsage", 0, lambda mw: mw / 1000.0, False),
    _TelemetryRead(
        "energy counter", "nvmlDeviceGetTotalEnergyConsumption", 1, lambda mj: mj / 1000.0, False
    ),
    _TelemetryRead("memory", "nvmlDeviceGetMemoryInfo", 4, lambda m: m.used / _MIB, True),  # MiB
    _TelemetryRead("utilization", "nvmlDeviceGetUtilizationRates", 5, lambda u: float(u.gpu), True),
    _TelemetryRead("sm clock", "nvmlDeviceGetClockInfo", 3, float, True),
    _TelemetryRead("temperature", "nvmlDeviceGetTemperature", 2, float, True),
    _TelemetryRead("clock-event reasons", _CLOCKS_EVENT_REASONS, 6, int, False),
)
_ENERGY = 1  # the energy counter's slot
#: Telemetry reads fields that change slowly (memory, utilisation, SM clock, temperature) at
#: most this often; a tick that skips them records them as missing. Each NVML call costs the
#: driver real time: on an H200 the thread's seven calls per tick took 4.9% of a core at 10 Hz.
#: Power, the energy counter and the clock-event reasons behind throttle detection are read
#: every tick (the power trace is integrated and compared with the counter).
SLOW_FIELDS_EVERY_SEC = 0.5


class NvmlChannel(Channel):
    """One whole GPU through NVML: window reads plus one telemetry sample per tick."""

    def __init__(self, nvml: Nvml, gpu: NvmlGpu) -> None:
        self.device = DeviceRef(uid=gpu.uuid, label=gpu.label, kind="gpu", name=gpu.name)
        self.gpu = gpu
        self._nvml = nvml
        self._handle = gpu.handle
        self._clock_sm = nvml.const("NVML_CLOCK_SM", 1)
        self._temperature_gpu = nvml.const("NVML_TEMPERATURE_GPU", 0)
        reasons_fn = (
            _CLOCKS_EVENT_REASONS
            if hasattr(nvml.lib, _CLOCKS_EVENT_REASONS)
            else _CLOCKS_THROTTLE_REASONS
        )
        # Telemetry calls the bindings directly, resolved once (the thread stays cheap). A slot
        # is None when the field is not read: the binding lacks it, the GPU said 'not
        # supported' / 'no permission' (asked once, then skipped), or this channel does not
        # read the energy counter in telemetry.
        self._error_type = nvml.error_type
        self._reads: list[Callable[..., Any] | None] = [
            getattr(nvml.lib, reasons_fn if r.field == "clock-event reasons" else r.binding, None)
            for r in _READS
        ]
        # the extra arguments of each read (which clock, which sensor)
        extra = {"sm clock": (self._clock_sm,), "temperature": (self._temperature_gpu,)}
        self._args: list[tuple[Any, ...]] = [extra.get(r.field, ()) for r in _READS]
        if not self._reads_counter:
            self._reads[_ENERGY] = None
        self.sample_errors: list[str] = []

    #: Whether telemetry reads the total-energy counter (the counter channel does).
    _reads_counter = False
    #: Monotonic time from which the next tick reads the slow fields.
    _slow_due_sec = -math.inf

    # -- strict reads (window edges) ---------------------------------------------------------
    def read_power_w(self) -> float:
        """Current board power in watts (NVML reports mW)."""
        mw = self._nvml.call("nvmlDeviceGetPowerUsage", self._handle, what=f"{self.label} power")
        return float(mw) / 1000.0

    def read_energy_mj(self) -> int:
        """The total-energy counter in mJ."""
        return int(
            self._nvml.call(
                "nvmlDeviceGetTotalEnergyConsumption", self._handle, what=f"{self.label} energy"
            )
        )

    @property
    def label(self) -> str:
        return self.device.label

    # -- lenient reads (telemetry) -----------------------------------------------------------
    @property
    def unavailable_fields(self) -> list[str]:
        """Telemetry fields this GPU does not report (skipped each tick)."""
        return [r.field for r, fn in zip(_READS, self._reads, strict=True) if fn is None]

    def _failed(self, slot: int, exc: BaseException) -> None:
        """A telemetry read raised: stop asking if unsupported, else keep the first errors."""
        mapped = translate_nvml_error(exc, f"{self.label} {_READS[slot].field}")
        if isinstance(mapped, (NvmlNotSupported, NvmlNoPermission)):
            self._reads[slot] = None
        elif len(self.sample_errors) < 5:
            self.sample_errors.append(str(mapped))

    def sample_row(self, t: float) -> TelemetryRow:
        """One tick's fields in one pass: power, energy counter, memory, utilisation, SM clock,
        temperature, clock-event reasons (that order of calls); a field not read is NaN. The
        slow fields are read on the first tick and then every ``SLOW_FIELDS_EVERY_SEC``."""
        slow_due = t >= self._slow_due_sec
        if slow_due:
            # 0.9: a tick that comes a little early (timer jitter) still counts
            self._slow_due_sec = t + 0.9 * SLOW_FIELDS_EVERY_SEC
        row: list[float] = list(EMPTY_ROW)
        handle, error = self._handle, self._error_type
        for slot, read in enumerate(self._reads):
            spec = _READS[slot]
            if read is None or (spec.slow and not slow_due):
                continue
            try:
                row[spec.column] = spec.convert(read(handle, *self._args[slot]))
            except error as exc:
                self._failed(slot, exc)
        return tuple(row)  # type: ignore[return-value]


class NvmlCounterChannel(NvmlChannel):
    """Energy = difference of the GPU's total-energy counter across the window."""

    method = "nvml_energy_counter"
    confidence = "high"

    _reads_counter = True

    def __init__(self, nvml: Nvml, gpu: NvmlGpu) -> None:
        super().__init__(nvml, gpu)
        self._start_mj: int | None = None
        self._t0 = 0.0

    def start(self, t: float) -> None:
        self._start_mj, self._t0 = self.read_energy_mj(), t

    def stop(self, t: float) -> ChannelEnergy:
        if self._start_mj is None:
            raise RuntimeError("stop() without start()")
        end_mj, start_mj, self._start_mj = self.read_energy_mj(), self._start_mj, None
        duration = t - self._t0
        delta_mj = end_mj - start_mj
        if delta_mj < 0:
            raise InstrumentError(
                f"{self.label}: the NVML energy counter went backwards ({start_mj} -> {end_mj} "
                "mJ); the driver was probably reloaded during the window; measure again"
            )
        warnings = []
        shortest = MIN_UPDATES_PER_WINDOW * COUNTER_UPDATE_SEC
        if duration < shortest:
            warnings.append(
                f"{self.label}: the window ({duration:.3f} s) is shorter than ~"
                f"{MIN_UPDATES_PER_WINDOW} updates of the NVML energy counter (~{shortest:.1f} s); "
                "its energy may be off by up to one update's worth"
            )
        confidence: Confidence | None = None
        if delta_mj == 0 and duration > 0:
            confidence = "low"
            warnings.append(
                f"{self.label}: the NVML energy counter did not advance in {duration:.3f} s; "
                "0 J is a counter-resolution artefact, not a measurement (confidence low)"
            )
        return ChannelEnergy(energy_j=delta_mj / 1000.0, warnings=warnings, confidence=confidence)


class NvmlPowerChannel(NvmlChannel):
    """Energy = trapezoid integral of polled board power (for GPUs without the counter)."""

    method = "nvml_power_polling"
    confidence = "medium"

    def __init__(self, nvml: Nvml, gpu: NvmlGpu, poll_interval_sec: float) -> None:
        super().__init__(nvml, gpu)
        self.max_poll_interval_sec = poll_interval_sec
        self._integrator = TrapezoidIntegrator()
        self._t0 = 0.0

    def sample_row(self, t: float) -> TelemetryRow:
        row = super().sample_row(t)
        if not math.isnan(row[0]):
            self._integrator.add(t, row[0])
        return row

    def start(self, t: float) -> None:
        self._integrator.reset(t, self.read_power_w())
        self._t0 = t

    def stop(self, t: float) -> ChannelEnergy:
        energy_j = self._integrator.finish(t, self.read_power_w())
        samples = self._integrator.samples
        every = (t - self._t0) / (samples - 1) if samples > 1 else t - self._t0
        warnings = [
            f"{self.label} has no NVML energy counter: its energy integrates {samples} "
            f"nvmlDeviceGetPowerUsage samples (every ~{every:.3g} s, trapezoid rule, confidence "
            "medium); on recent GPUs that reading is itself a ~1 s average, so fast changes are "
            "smoothed"
        ]
        if samples < MIN_UPDATES_PER_WINDOW:
            warnings.append(
                f"{self.label}: only {samples} power samples in the {t - self._t0:.3f} s window "
                f"(fewer than {MIN_UPDATES_PER_WINDOW}); the integral is coarse"
            )
        return ChannelEnergy(energy_j=energy_j, warnings=warnings)


def has_energy_counter(nvml: Nvml, gpu: NvmlGpu) -> tuple[bool, str | None]:
    """Whether the GPU's total-energy counter can be read, and why not."""
    try:
        nvml.call("nvmlDeviceGetTotalEnergyConsumption", gpu.handle, what=f"{gpu.label} energy")
    except (NvmlNotSupported, NvmlNoPermission) as exc:
        return False, str(exc)
    return True, None


def build_nvml_channels(
    nvml: Nvml, gpus: Sequence[NvmlGpu], *, poll_interval_sec: float, strict: bool = True
) -> tuple[list[NvmlChannel], list[str]]:
    """A counter channel per GPU that has the counter, a power-polling channel otherwise.

    A GPU that reports neither energy nor power raises when ``strict``, else it is skipped
    with a warning.
    """
    channels: list[NvmlChannel] = []
    warnings: list[str] = []
    for gpu in gpus:
        if gpu.mig_uuid is not None or gpu.mig_enabled:
            instance = f" instance {gpu.mig_uuid}" if gpu.mig_uuid else ""
            warnings.append(
                f"{gpu.label} ({gpu.uuid}) runs in MIG mode{instance}: NVML reports power and "
                "energy for the whole GPU, shared by every MIG instance on it"
            )
        counter, why = has_energy_counter(nvml, gpu)
        if counter:
            channels.append(NvmlCounterChannel(nvml, gpu))
            continue
        channel = NvmlPowerChannel(nvml, gpu, poll_interval_sec)
        try:
            channel.read_power_w()
        except NvmlError as exc:
            if strict:
                raise
            warnings.append(f"{gpu.label} is not measured: no energy counter ({why}) and {exc}")
            continue
        channels.append(channel)
        warnings.append(f"{gpu.label}: no energy counter ({why}); polling power instead")
    return channels, warnings
