"""A fake ``pynvml`` module playing scripted traces for several GPUs on a fake clock.

It has the names, argument orders, units (mW, mJ, bytes) and error behaviour (``NVMLError``
with an NVML return code in ``.value``) of nvidia-ml-py, so the package's real NVML code runs
against it unchanged. Install it with ``monkeypatch.setitem(sys.modules, "pynvml", fake)``.
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.clock import FakeClock
from tests.fakes.traces import PowerTrace, constant

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15


class NVMLError(Exception):
    """Like pynvml.NVMLError: the NVML return code is in ``.value``."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class FakeGpu:
    """One scripted GPU. Traces take seconds since the fake module was created."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power: PowerTrace = field(default_factory=lambda: constant(100.0))
    has_energy_counter: bool = True
    counter_offset_mj: int = 987_654_321  # energy since the driver loaded
    counter_update_sec: float = 0.0  # 0: the counter follows the trace continuously
    temperature_c: Callable[[float], float] = lambda t: 45.0
    reasons: Callable[[float], int] = lambda t: 0
    sm_clock_mhz: Callable[[float], float] = lambda t: 1980.0
    memory_used_bytes: int = 12_000_000_000
    utilization_pct: Callable[[float], float] = lambda t: 90.0
    utilization_supported: bool = True
    mig_instances: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Handle:
    index: int
    mig_slot: int | None = None


@dataclass
class _Memory:
    total: int
    used: int
    free: int


@dataclass
class _Utilization:
    gpu: int
    memory: int


class FakePynvml(types.ModuleType):
    """Scripted stand-in for the pynvml module."""

    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED

    def __init__(
        self,
        gpus: list[FakeGpu],
        clock: FakeClock | None = None,
        *,
        init_error: int | None = None,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        clocks_event_reasons_api: bool = True,
    ) -> None:
        super().__init__("pynvml")
        self.gpus = gpus
        self.clock = clock or FakeClock()
        self.origin = self.clock()
        self.init_error = init_error
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.initialised = 0
        self.calls: Counter[str] = Counter()
        if clocks_event_reasons_api:
            self.nvmlDeviceGetCurrentClocksEventReasons = self._reasons

    # -- helpers -------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the fake was created (the traces' time axis)."""
        return self.clock() - self.origin

    def _gpu(self, handle: _Handle, fn: str) -> FakeGpu:
        self.calls[fn] += 1
        if self.initialised <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        if not isinstance(handle, _Handle) or handle.index >= len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[handle.index]

    # -- library -------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        if self.initialised <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        if self.initialised <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    # -- identity and MIG ----------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        return gpu.uuid if handle.mig_slot is None else gpu.mig_instances[handle.mig_slot]

    def nvmlDeviceGetName(self, handle: _Handle) -> bytes:
        return self._gpu(handle, "nvmlDeviceGetName").name.encode()  # old bindings gave bytes

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        if gpu.name.startswith("NVIDIA GeForce"):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        mode = 1 if gpu.mig_instances else 0
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, slot: int) -> _Handle:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if slot >= len(gpu.mig_instances):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return _Handle(handle.index, slot)

    # -- readings ------------------------------------------------------------------------------
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption")
        if not gpu.has_energy_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        t = self.now()
        if gpu.counter_update_sec > 0:
            t = gpu.counter_update_sec * math.floor(t / gpu.counter_update_sec + 1e-9)
        return gpu.counter_offset_mj + math.floor(gpu.power.energy_j(t) * 1000.0)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetPowerUsage")
        return round(gpu.power.power_w(self.now()) * 1000.0)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperature")
        if sensor != self.NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return round(gpu.temperature_c(self.now()))

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        if clock_type != self.NVML_CLOCK_SM:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return round(gpu.sm_clock_mhz(self.now()))

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> _Memory:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        total = 80_000_000_000
        return _Memory(total=total, used=gpu.memory_used_bytes, free=total - gpu.memory_used_bytes)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> _Utilization:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        if not gpu.utilization_supported or gpu.mig_instances:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return _Utilization(gpu=round(gpu.utilization_pct(self.now())), memory=30)

    def _reasons(self, handle: _Handle) -> int:
        return self._gpu(handle, "clock_event_reasons").reasons(self.now())

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        return self._reasons(handle)


def gpu_uuid(i: int) -> str:
    """A UUID-shaped id for fake GPU i."""
    return f"GPU-{i:08x}-1111-2222-3333-44445555{i:04x}"


def install(monkeypatch: Any, fake: FakePynvml) -> FakePynvml:
    """Make ``import pynvml`` return the fake for the rest of the test."""
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def constant_readings(fake: FakePynvml) -> FakePynvml:
    """Make the fake's telemetry reads return fixed values at once (every GPU alike).

    The scripted fake evaluates traces and counts calls in Python on every read, work that real
    NVML does not do in Python (there each read is a ctypes call into the driver). With constant
    reads, what a telemetry benchmark measures is llem's own per-sample work and the thread's
    wake-ups, without the fake's; the cost of the real driver calls is in neither figure.
    """
    gpu = fake.gpus[0] if fake.gpus else FakeGpu("GPU-none")
    total = 80_000_000_000
    memory = _Memory(total=total, used=gpu.memory_used_bytes, free=total - gpu.memory_used_bytes)
    utilization = _Utilization(gpu=round(gpu.utilization_pct(0.0)), memory=30)
    power_mw = round(gpu.power.power_w(0.0) * 1000.0)
    counter_mj = gpu.counter_offset_mj
    temperature = round(gpu.temperature_c(0.0))
    clock = round(gpu.sm_clock_mhz(0.0))
    reasons = gpu.reasons(0.0)
    fake.nvmlDeviceGetPowerUsage = lambda handle: power_mw  # type: ignore[method-assign]
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda handle: counter_mj  # type: ignore[method-assign]
    fake.nvmlDeviceGetTemperature = lambda handle, sensor: temperature  # type: ignore[method-assign]
    fake.nvmlDeviceGetClockInfo = lambda handle, kind: clock  # type: ignore[method-assign]
    fake.nvmlDeviceGetMemoryInfo = lambda handle: memory  # type: ignore[method-assign]
    fake.nvmlDeviceGetUtilizationRates = lambda handle: utilization  # type: ignore[method-assign]
    fake.nvmlDeviceGetCurrentClocksEventReasons = lambda handle: reasons
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: reasons  # type: ignore[method-assign]
    return fake


def install_wall_clock_fake(n_gpus: int, kind: str = "scripted") -> FakePynvml:
    """A fake with ``n_gpus`` GPUs on the wall clock (time.monotonic), ``kind`` "scripted" or
    "constant" (``constant_readings``), installed as ``pynvml`` for the benchmarks that run
    the real telemetry thread where no driver is."""
    import sys
    import time

    fake = FakePynvml([FakeGpu(gpu_uuid(i)) for i in range(n_gpus)])
    fake.clock = time.monotonic  # type: ignore[assignment]
    fake.origin = time.monotonic()
    if kind == "constant":
        constant_readings(fake)
    sys.modules["pynvml"] = fake  # type: ignore[assignment]
    return fake
