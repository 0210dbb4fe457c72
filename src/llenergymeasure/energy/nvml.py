"""NVML channels: the GPU's total-energy counter where it has one, else integrated power polls.

Counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver loaded): exact between
two reads, confidence high. Without it (pre-Volta GPUs, some vGPUs) ``nvmlDeviceGetPowerUsage``
(mW) is polled by the telemetry thread and integrated with the trapezoid rule, confidence medium.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llenergymeasure.domain.metrics import Confidence
from llenergymeasure.energy.base import (
    Channel,
    ChannelEnergy,
    DeviceRef,
    TelemetryReading,
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
        # Telemetry calls the bindings directly (resolved once): the thread stays cheap.
        self._error_type = nvml.error_type
        self._fns: dict[str, Any] = {
            field: getattr(nvml.lib, name, None)
            for field, name in (
                ("power", "nvmlDeviceGetPowerUsage"),
                ("energy counter", "nvmlDeviceGetTotalEnergyConsumption"),
                ("memory", "nvmlDeviceGetMemoryInfo"),
                ("utilization", "nvmlDeviceGetUtilizationRates"),
                ("sm clock", "nvmlDeviceGetClockInfo"),
                ("temperature", "nvmlDeviceGetTemperature"),
                ("clock-event reasons", reasons_fn),
            )
        }
        # telemetry fields the GPU cannot report (asked once, then skipped)
        self._unavailable: set[str] = {f for f, fn in self._fns.items() if fn is None}
        self.sample_errors: list[str] = []

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
    def _try(self, field: str, *args: Any) -> Any:
        if field in self._unavailable:
            return None
        try:
            return self._fns[field](self._handle, *args)
        except self._error_type as exc:
            mapped = translate_nvml_error(exc, f"{self.label} {field}")
            if isinstance(mapped, (NvmlNotSupported, NvmlNoPermission)):
                self._unavailable.add(field)
            elif len(self.sample_errors) < 5:
                self.sample_errors.append(str(mapped))
        return None

    def sample(self, t: float) -> TelemetryReading:
        power = self._try("power")
        energy = self._read_counter_for_telemetry()
        memory = self._try("memory")
        util = self._try("utilization")
        clock = self._try("sm clock", self._clock_sm)
        temp = self._try("temperature", self._temperature_gpu)
        reasons = self._try("clock-event reasons")
        return TelemetryReading(
            power_w=None if power is None else power / 1000.0,
            energy_counter_j=None if energy is None else energy / 1000.0,
            temperature_c=None if temp is None else float(temp),
            sm_clock_mhz=None if clock is None else float(clock),
            memory_used_mb=None if memory is None else memory.used / 2**20,  # MiB, as elsewhere
            utilization_pct=None if util is None else float(util.gpu),
            clock_event_reasons=None if reasons is None else int(reasons),
        )

    def _read_counter_for_telemetry(self) -> int | None:
        return None


class NvmlCounterChannel(NvmlChannel):
    """Energy = difference of the GPU's total-energy counter across the window."""

    method = "nvml_energy_counter"
    confidence = "high"

    def __init__(self, nvml: Nvml, gpu: NvmlGpu) -> None:
        super().__init__(nvml, gpu)
        self._start_mj: int | None = None
        self._t0 = 0.0

    def _read_counter_for_telemetry(self) -> int | None:
        return self._try("energy counter")

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

    def sample(self, t: float) -> TelemetryReading:
        reading = super().sample(t)
        if reading.power_w is not None:
            self._integrator.add(t, reading.power_w)
        return reading

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
