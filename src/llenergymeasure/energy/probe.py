"""What `llem doctor` reports: every instrument, available or not and why, the devices, drivers."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.energy.estimate import (
    RAM_W_PER_GB,
    CpuEstimateChannel,
    Host,
)
from llenergymeasure.energy.factory import create_meter
from llenergymeasure.energy.rapl import POWERCAP_ROOT, discover_rapl


@dataclass
class InstrumentStatus:
    """One instrument: a short status ('in use', 'available', 'no driver', ...) and why."""

    name: str
    status: str
    detail: str


@dataclass
class DoctorReport:
    """Everything `llem doctor` prints."""

    instruments: list[InstrumentStatus]
    devices: list[str]
    driver_version: str | None
    cuda_driver_version: str | None
    auto: str
    auto_warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def status_of(self, name: str) -> str:
        return next(i.status for i in self.instruments if i.name == name)


def _nvml_status(
    env: Mapping[str, str],
) -> tuple[InstrumentStatus, list[str], str | None, str | None]:
    from llenergymeasure.energy.devices import list_gpus
    from llenergymeasure.energy.nvml import has_energy_counter
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    try:
        nvml = Nvml()
    except NvmlError as exc:
        return InstrumentStatus("NVML", exc.status, exc.reason), [], None, None
    try:
        driver, cuda = nvml.driver_version(), nvml.cuda_driver_version()
        gpus = list_gpus(nvml)
        devices = []
        counters = 0
        for gpu in gpus:
            counter, _ = has_energy_counter(nvml, gpu)
            counters += counter
            mig = ", MIG on" if gpu.mig_enabled else ""
            method = "energy counter" if counter else "power polling (no energy counter)"
            devices.append(f"{gpu.label} {gpu.name} {gpu.uuid}: {method}{mig}")
    except NvmlError as exc:
        return InstrumentStatus("NVML", exc.status, exc.reason), [], None, None
    finally:
        nvml.close()
    if not gpus:
        return (
            InstrumentStatus("NVML", "no GPU", "the driver loads but reports no GPU"),
            [],
            driver,
            cuda,
        )
    detail = f"{len(gpus)} GPU(s), {counters} with the energy counter; driver {driver}"
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        detail += f"; CUDA_VISIBLE_DEVICES={visible!r}"
    return InstrumentStatus("NVML", "available", detail), devices, driver, cuda


def _library_status(name: str, module: str) -> InstrumentStatus:
    if importlib.util.find_spec(module) is None:
        return InstrumentStatus(
            name, "not installed", f"pip install 'llenergymeasure[{module}]' to use it"
        )
    return InstrumentStatus(name, "installed", f"used only when asked for (energy: {module})")


def diagnose(
    *,
    env: Mapping[str, str] | None = None,
    powercap_root: Path | str = POWERCAP_ROOT,
    host: Host | None = None,
) -> DoctorReport:
    """Probe every instrument (nothing is measured; no waiting)."""
    env = os.environ if env is None else env
    host = host or Host.local()
    nvml, gpu_devices, driver, cuda = _nvml_status(env)
    rapl = discover_rapl(powercap_root)
    rapl_status = InstrumentStatus("RAPL", rapl.status, rapl.detail or str(rapl.root))
    meter = create_meter("auto", env=env, powercap_root=powercap_root, host=host)
    try:
        auto = meter.describe()
        auto_warnings = list(meter.warnings)
        methods = {c.method for c in meter.telemetry_channels()}
    finally:
        meter.close()
    if methods & {"nvml_energy_counter", "nvml_power_polling"}:
        nvml.status = "in use"
    if "rapl" in methods:
        rapl_status.status = "in use"
    cpu = CpuEstimateChannel(host)
    estimate_detail = (
        f"{cpu.describe_model()}; RAM = {RAM_W_PER_GB} W/GB x {host.ram_bytes / 1e9:.1f} GB "
        "(confidence low)"
    )
    estimate = InstrumentStatus(
        "estimate", "in use" if "estimate" in methods else "available", estimate_detail
    )
    devices = [
        *gpu_devices,
        f"cpu {host.cpu_model or 'unknown model'}: {host.physical_cores} physical cores",
        f"ram {host.ram_bytes / 1e9:.1f} GB",
    ]
    return DoctorReport(
        instruments=[
            nvml,
            rapl_status,
            _library_status("Zeus", "zeus"),
            _library_status("CodeCarbon", "codecarbon"),
            estimate,
        ],
        devices=devices,
        driver_version=driver,
        cuda_driver_version=cuda,
        auto=auto,
        auto_warnings=[w for w in auto_warnings if not w.startswith("energy instruments chosen")],
    )
