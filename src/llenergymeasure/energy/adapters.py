"""Zeus and CodeCarbon as meters (optional extras), for users who already trust those tools.

Their figures are mapped into the same DeviceEnergy/EnergyMetrics with the method named
('zeus', 'codecarbon'). Confidence is ours, not theirs: Zeus reads the same NVML counter and
RAPL zones we do (high; medium for a GPU without the counter, which Zeus polls); CodeCarbon
samples power every ``measure_power_secs`` and falls back to TDP tables when RAPL is unreadable
(medium for the GPU and, with readable RAPL, the CPU; low otherwise). The libraries are
imported here only, when such a meter is created.
"""

from __future__ import annotations

import itertools
import os
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llenergymeasure.domain.energy import DeviceEnergy
from llenergymeasure.domain.metrics import Confidence
from llenergymeasure.energy.base import (
    Clock,
    DeviceRef,
    EnergyMeter,
)
from llenergymeasure.energy.estimate import Host
from llenergymeasure.energy.rapl import POWERCAP_ROOT, discover_rapl
from llenergymeasure.errors import InstrumentError

_J_PER_KWH = 3.6e6


def _not_installed(name: str) -> InstrumentError:
    return InstrumentError(
        f"instrument {name!r} is not installed: pip install 'llenergymeasure[{name}]'"
    )


def _visible_gpus(env: Mapping[str, str], gpu_indices: Sequence[int] | None) -> dict[int, Any]:
    """CUDA ordinal -> NvmlGpu through our own NVML mapping; empty when NVML is unavailable."""
    from llenergymeasure.energy.devices import resolve_gpus
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    try:
        nvml = Nvml()
    except NvmlError:
        return {}
    try:
        gpus, _ = resolve_gpus(nvml, env, gpu_indices, strict=False)
        return {g.cuda_index: g for g in gpus}
    except NvmlError:
        return {}
    finally:
        nvml.close()


class LibraryMeter(EnergyMeter):
    """A meter whose readings come from another library's window API."""

    method: str

    def __init__(self, *, clock: Clock | None, host: Host, warnings: Sequence[str] = ()) -> None:
        super().__init__(clock=clock, warnings=warnings)
        self.host = host
        self._devices: list[DeviceRef] = []

    @property
    def devices(self) -> list[DeviceRef]:
        return list(self._devices)

    def describe(self) -> str:
        return f"{self.method} ({', '.join(d.label for d in self._devices)})"

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _end(self) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        """Devices, the library's own duration (None: use ours), caveats."""

    def _start(self, t0: float) -> None:
        self._begin()

    def _stop(self, t1: float) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        devices, duration, notes = self._end()
        self._devices = [DeviceRef(d.uid, d.label, d.kind, d.name) for d in devices]
        return devices, duration, notes

    def _device(self, ref: DeviceRef, energy_j: float, confidence: Confidence) -> DeviceEnergy:
        return DeviceEnergy(
            uid=ref.uid,
            label=ref.label,
            kind=ref.kind,
            name=ref.name,
            energy_j=max(0.0, float(energy_j)),
            method=self.method,
            confidence=confidence,
        )


class ZeusMeter(LibraryMeter):
    """Energy from ``zeus.monitor.ZeusMonitor`` windows (GPU via NVML, CPU/DRAM via RAPL)."""

    method = "zeus"

    def __init__(
        self,
        gpu_indices: Sequence[int] | None = None,
        *,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        host: Host | None = None,
        include_host: bool = True,
    ) -> None:
        super().__init__(clock=clock, host=host or Host.local())
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as exc:
            raise _not_installed("zeus") from exc
        kwargs: dict[str, Any] = {
            "gpu_indices": list(gpu_indices) if gpu_indices is not None else None
        }
        if not include_host:
            kwargs["cpu_indices"] = []  # another process meters this host's CPU and DRAM
        try:
            self._monitor = ZeusMonitor(**kwargs)
        except Exception as exc:  # zeus raises its own error types, or RuntimeError
            raise InstrumentError(f"zeus could not start: {exc}") from exc
        self._gpus = _visible_gpus(env if env is not None else os.environ, gpu_indices)
        self._keys = itertools.count()
        self._key: str | None = None
        self._devices = self._probe_devices()
        if not self._devices:
            raise InstrumentError("zeus found no GPU and no RAPL zone it can measure here")
        self.warnings.append(
            "energy measured by Zeus (method 'zeus'); confidence is llem's judgement of how "
            "Zeus measures, not Zeus's own"
        )
        if not include_host:
            self.warnings.append(
                "this process does not meter the host's CPU and RAM (another process on the "
                "same host does)"
            )

    def _probe_devices(self) -> list[DeviceRef]:
        """Every device Zeus reports, from an empty window opened and closed now.

        Zeus adds DRAM zones only in a window's result, so without this the device list (and
        a cached idle baseline's keys) would miss them until the first real window.
        """
        try:
            self._begin()
            devices, _, _ = self._end()
        except Exception:  # a probe that fails leaves the list Zeus's constructor gives
            self._key = None
            return [self._gpu_ref(i) for i in self._monitor.gpu_indices] + [
                self._cpu_ref(i, "cpu") for i in getattr(self._monitor, "cpu_indices", [])
            ]
        return [DeviceRef(d.uid, d.label, d.kind, d.name) for d in devices]

    def _gpu_ref(self, index: int) -> DeviceRef:
        gpu = self._gpus.get(index)
        if gpu is None:
            return DeviceRef(f"{self.host.hostname}:zeus:gpu{index}", f"gpu:cuda{index}", "gpu")
        return DeviceRef(gpu.uuid, gpu.label, "gpu", gpu.name)

    def _cpu_ref(self, index: int, kind: str) -> DeviceRef:
        suffix = f"package-{index}" if kind == "cpu" else f"package-{index}:dram"
        return DeviceRef(
            f"{self.host.hostname}:rapl:{suffix}",
            f"{kind}:package-{index}",
            kind,  # type: ignore[arg-type]
        )

    def _begin(self) -> None:
        self._key = f"llem-{next(self._keys)}"
        self._monitor.begin_window(self._key, sync_execution=False)

    def _end(self) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        key, self._key = self._key, None
        m = self._monitor.end_window(key, sync_execution=False)
        old = set(getattr(getattr(self._monitor, "power_monitor", None), "gpu_indices", []) or [])
        devices = [
            self._device(self._gpu_ref(i), j, "medium" if i in old else "high")
            for i, j in sorted(m.gpu_energy.items())
        ]
        for kind, energies in (("cpu", m.cpu_energy), ("ram", m.dram_energy)):
            devices += [
                self._device(self._cpu_ref(i, kind), j, "high")
                for i, j in sorted((energies or {}).items())
            ]
        return devices, float(m.time), []


class CodeCarbonMeter(LibraryMeter):
    """Energy from a CodeCarbon ``OfflineEmissionsTracker`` run per window (kWh -> J)."""

    method = "codecarbon"

    def __init__(
        self,
        gpu_indices: Sequence[int] | None = None,
        *,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        host: Host | None = None,
        country_iso_code: str = "USA",
        measure_power_secs: float = 1.0,
        powercap_root: Path | str = POWERCAP_ROOT,
        include_host: bool = True,
    ) -> None:
        super().__init__(clock=clock, host=host or Host.local())
        self._include_host = include_host
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            raise _not_installed("codecarbon") from exc
        self._tracker_type = OfflineEmissionsTracker
        self._gpu_indices = list(gpu_indices) if gpu_indices is not None else None
        self._country = country_iso_code
        self._interval = measure_power_secs
        self._tracker: Any = None
        rapl = discover_rapl(powercap_root).status == "available"
        self._cpu_confidence: Confidence = "medium" if rapl else "low"
        name = self.host.hostname
        # gpu_indices == []: the engine uses no GPU, whatever CodeCarbon would find on its own.
        self._use_gpu = gpu_indices is None or bool(list(gpu_indices))
        has_gpu = self._use_gpu and bool(
            _visible_gpus(env if env is not None else os.environ, gpu_indices)
        )
        self._gpu_ref = DeviceRef(f"{name}:codecarbon:gpu", "gpu", "gpu")
        self._cpu_ref = DeviceRef(f"{name}:codecarbon:cpu", "cpu", "cpu", self.host.cpu_model)
        self._ram_ref = DeviceRef(f"{name}:codecarbon:ram", "ram", "ram")
        self._devices = [
            *([self._gpu_ref] if has_gpu else []),
            *([self._cpu_ref, self._ram_ref] if include_host else []),
        ]
        if not include_host:
            self.warnings.append(
                "this process does not meter the host's CPU and RAM (another process on the "
                "same host does); CodeCarbon's CPU and RAM figures are left out"
            )
        self.warnings.append(
            f"energy measured by CodeCarbon (method 'codecarbon', power sampled every "
            f"{measure_power_secs:g} s, all GPUs together); "
            + (
                "CPU from RAPL"
                if rapl
                else "RAPL is unreadable here, so CodeCarbon estimates the CPU from its TDP "
                "tables (confidence low)"
            )
        )

    def _begin(self) -> None:
        common = {
            "country_iso_code": self._country,
            "measure_power_secs": self._interval,
            "log_level": "error",
            "tracking_mode": "machine",
            "gpu_ids": self._gpu_indices,
            "allow_multiple_runs": True,
        }
        try:  # CodeCarbon 3: no output at all
            self._tracker = self._tracker_type(**common, output_methods=[])
        except TypeError:  # CodeCarbon 2 has no output_methods
            self._tracker = self._tracker_type(**common, save_to_file=False)
        self._tracker.start()

    def _end(self) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        tracker, self._tracker = self._tracker, None
        tracker.stop()
        data = tracker.final_emissions_data
        if data is None:
            raise InstrumentError("CodeCarbon returned no energy data for the window")
        devices = []
        gpu_seen = float(getattr(data, "gpu_count", 0) or 0) > 0 or float(data.gpu_energy or 0) > 0
        if gpu_seen and self._use_gpu:
            devices.append(self._device(self._gpu_ref, data.gpu_energy * _J_PER_KWH, "medium"))
        if self._include_host:
            conf = self._cpu_confidence
            devices.append(self._device(self._cpu_ref, data.cpu_energy * _J_PER_KWH, conf))
            devices.append(self._device(self._ram_ref, data.ram_energy * _J_PER_KWH, conf))
        return devices, float(data.duration), []
