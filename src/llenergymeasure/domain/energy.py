"""Energy figures: per device, per kind (GPU/CPU/RAM) and in total, raw beside idle-adjusted."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import Field, computed_field, model_validator

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import Confidence, lowest_confidence

DeviceKind = Literal["gpu", "cpu", "ram"]

#: Relative tolerance when checking that stored sums equal their parts.
_SUM_RTOL = 1e-9


class DeviceEnergy(DomainModel):
    """Energy one device used over the measurement window, and how it was measured."""

    uid: str = Field(
        description="Globally unique device identity (GPU UUID, or host:domain for CPU/RAM); "
        "aggregation refuses to count the same uid twice."
    )
    label: str = Field(description="Short human label, e.g. 'gpu:0' or 'cpu:package-0'.")
    kind: DeviceKind
    name: str | None = Field(default=None, description="e.g. 'NVIDIA H200', 'Xeon 8480'.")
    energy_j: float = Field(ge=0, description="Raw energy over the window.")
    baseline_power_w: float | None = Field(
        default=None, ge=0, description="Idle power of this device, when measured."
    )
    adjusted_energy_j: float | None = Field(
        default=None, ge=0, description="energy_j - baseline_power_w x duration, floored at 0."
    )
    method: str = Field(description="Instrument, e.g. 'nvml_energy_counter', 'rapl', 'estimate'.")
    confidence: Confidence


def is_estimated(device: DeviceEnergy) -> bool:
    """True when a device's energy is modelled rather than read from a meter: the 'estimate'
    instrument (utilisation x TDP share, 0.375 W per GB of RAM), or CodeCarbon without RAPL
    (its TDP tables, confidence low)."""
    return device.method == "estimate" or (
        device.method == "codecarbon" and device.confidence == "low"
    )


@dataclass(frozen=True)
class KindEnergy:
    """The energy of one kind of device (GPU, CPU or RAM) and where it came from."""

    kind: DeviceKind
    energy_j: float
    adjusted_energy_j: float | None
    share: float = field(metadata={"unit": "fraction of the raw total, 0..1"})
    methods: tuple[str, ...]
    confidence: Confidence | None
    estimated: bool


BaselineMethod = Literal["measured", "cached", "none"]


class BaselineInfo(DomainModel):
    """How the idle baseline subtracted from the raw energy was obtained."""

    method: Literal["measured", "cached"] = Field(
        description="'measured' in this run, or 'cached' from an earlier run on the same "
        "devices and instruments."
    )
    duration_sec: float = Field(ge=0, description="Length of the idle window measured.")
    samples: int | None = Field(
        default=None, ge=0, description="Power samples taken during it (None: not recorded)."
    )
    settle_sec: float = Field(
        default=0.0, ge=0, description="Rest after the last work before the idle window began."
    )
    measured_at: datetime | None = Field(default=None, description="End of the idle window.")
    age_sec: float | None = Field(
        default=None,
        ge=0,
        description="From the end of the idle window to the start of the measurement window.",
    )

    def describe(self) -> str:
        """One line, e.g. 'measured: 10.0 s, 100 samples, after 5 s at rest, 12 s old'."""
        samples = f", {self.samples} samples" if self.samples is not None else ""
        age = f", {self.age_sec:.0f} s old" if self.age_sec is not None else ""
        return (
            f"{self.method}: {self.duration_sec:.1f} s{samples}, after {self.settle_sec:g} s "
            f"at rest{age}"
        )

    @classmethod
    def combine(cls, infos: Sequence[BaselineInfo]) -> BaselineInfo | None:
        """Several processes' baselines as one, each figure at its least favourable."""
        if not infos:
            return None
        samples = [i.samples for i in infos]
        ages = [i.age_sec for i in infos]
        times = [i.measured_at for i in infos if i.measured_at is not None]
        return cls(
            method="cached" if any(i.method == "cached" for i in infos) else "measured",
            duration_sec=min(i.duration_sec for i in infos),
            samples=None if None in samples else min(s for s in samples if s is not None),
            settle_sec=min(i.settle_sec for i in infos),
            measured_at=min(times) if times else None,
            age_sec=None if None in ages else max(a for a in ages if a is not None),
        )


def idle_adjusted(energy_j: float, baseline_power_w: float, duration_sec: float) -> float:
    """Raw energy minus idle power over the window, floored at 0."""
    return max(0.0, energy_j - baseline_power_w * duration_sec)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_SUM_RTOL, abs_tol=1e-9)


class EnergyMetrics(DomainModel):
    """Energy over the measurement window; totals are the sums of the per-device figures."""

    total_energy_j: float = Field(ge=0, description="Raw energy, all devices.")
    gpu_energy_j: float = Field(ge=0)
    cpu_energy_j: float = Field(ge=0)
    ram_energy_j: float = Field(ge=0)
    devices: list[DeviceEnergy] = Field(default_factory=list)
    mean_power_w: float = Field(ge=0, description="total_energy_j / duration_sec")
    duration_sec: float = Field(ge=0)
    method: str = Field(
        description="Instruments used, '+'-joined, e.g. 'nvml_energy_counter+rapl'."
    )
    confidence: Confidence = Field(description="The lowest confidence of the devices.")
    baseline_power_w: float | None = Field(
        default=None, ge=0, description="Idle power subtracted (sum over devices), if measured."
    )
    adjusted_energy_j: float | None = Field(
        default=None, ge=0, description="Idle-adjusted energy; the raw figure stays beside it."
    )
    baseline_method: BaselineMethod = "none"
    baseline: BaselineInfo | None = Field(
        default=None,
        description="How the idle baseline was obtained (duration, samples, settle time, age); "
        "None without one (and in files before schema 1.2).",
    )

    @model_validator(mode="after")
    def _sums_match_devices(self) -> EnergyMetrics:
        if not self.devices:
            return self
        for kind in ("gpu", "cpu", "ram"):
            parts = math.fsum(d.energy_j for d in self.devices if d.kind == kind)
            if not _close(getattr(self, f"{kind}_energy_j"), parts):
                raise ValueError(f"{kind}_energy_j does not equal the sum of its devices ({parts})")
        parts = self.gpu_energy_j + self.cpu_energy_j + self.ram_energy_j
        if not _close(self.total_energy_j, parts):
            raise ValueError(f"total_energy_j does not equal gpu + cpu + ram ({parts})")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def per_device_energy_j(self) -> dict[str, float]:
        """Raw joules keyed by device label."""
        return {d.label: d.energy_j for d in self.devices}

    def _adjusted(self, device: DeviceEnergy) -> float | None:
        if device.adjusted_energy_j is not None:
            return device.adjusted_energy_j
        if device.baseline_power_w is None:
            return None
        return idle_adjusted(device.energy_j, device.baseline_power_w, self.duration_sec)

    def by_kind(self) -> list[KindEnergy]:
        """Raw (and idle-adjusted) joules per kind of device, its share of the total, and
        whether any part of it is estimated; kinds without energy or devices are left out."""
        parts: list[KindEnergy] = []
        for kind in ("gpu", "cpu", "ram"):
            energy_j = getattr(self, f"{kind}_energy_j")
            mine = [d for d in self.devices if d.kind == kind]
            if not mine and energy_j == 0:
                continue
            adjusted = [self._adjusted(d) for d in mine]
            parts.append(
                KindEnergy(
                    kind=kind,  # type: ignore[arg-type]
                    energy_j=energy_j,
                    adjusted_energy_j=math.fsum(adjusted)  # type: ignore[arg-type]
                    if mine and None not in adjusted
                    else None,
                    share=energy_j / self.total_energy_j if self.total_energy_j > 0 else 0.0,
                    methods=tuple(dict.fromkeys(d.method for d in mine)),
                    confidence=lowest_confidence(*(d.confidence for d in mine)) if mine else None,
                    estimated=any(is_estimated(d) for d in mine),
                )
            )
        return parts

    @classmethod
    def from_devices(
        cls,
        devices: Sequence[DeviceEnergy],
        duration_sec: float,
        *,
        baseline_method: BaselineMethod = "none",
        baseline_info: BaselineInfo | None = None,
    ) -> EnergyMetrics:
        """Build the totals from per-device figures (the only way the harness builds them).

        No devices (a process that metered nothing, e.g. a second worker on a CPU-only host
        whose CPU another worker meters) gives zero energy with method 'none'.
        """
        if not devices:
            return cls(
                total_energy_j=0.0,
                gpu_energy_j=0.0,
                cpu_energy_j=0.0,
                ram_energy_j=0.0,
                mean_power_w=0.0,
                duration_sec=duration_sec,
                method="none",
                confidence="high",
            )
        uids = [d.uid for d in devices]
        duplicated = sorted({u for u in uids if uids.count(u) > 1})
        if duplicated:
            raise ValueError(f"device(s) counted twice: {duplicated}")
        by_kind = {
            kind: math.fsum(d.energy_j for d in devices if d.kind == kind)
            for kind in ("gpu", "cpu", "ram")
        }
        total = by_kind["gpu"] + by_kind["cpu"] + by_kind["ram"]
        with_baseline = [d for d in devices if d.baseline_power_w is not None]
        baseline = adjusted = None
        if with_baseline and len(with_baseline) == len(devices):
            baseline = math.fsum(d.baseline_power_w or 0.0 for d in devices)
            adjusted = math.fsum(
                d.adjusted_energy_j
                if d.adjusted_energy_j is not None
                else idle_adjusted(d.energy_j, d.baseline_power_w or 0.0, duration_sec)
                for d in devices
            )
        methods = list(dict.fromkeys(d.method for d in devices))
        return cls(
            total_energy_j=total,
            gpu_energy_j=by_kind["gpu"],
            cpu_energy_j=by_kind["cpu"],
            ram_energy_j=by_kind["ram"],
            devices=list(devices),
            mean_power_w=total / duration_sec if duration_sec > 0 else 0.0,
            duration_sec=duration_sec,
            method="+".join(methods),
            confidence=lowest_confidence(*(d.confidence for d in devices)),
            baseline_power_w=baseline,
            adjusted_energy_j=adjusted,
            baseline_method=baseline_method if baseline is not None else "none",
            baseline=baseline_info if baseline is not None else None,
        )

    @classmethod
    def combine(cls, parts: Iterable[EnergyMetrics], wall_time_sec: float) -> EnergyMetrics:
        """Several processes' energy: devices pooled (never twice), summed, never averaged."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to combine")
        # A process that metered no device has no baseline either; it must not hide the others'.
        methods = {p.baseline_method for p in parts if p.devices} or {"none"}
        baseline_method: BaselineMethod = (
            # the least favourable: one process's cached baseline makes the whole one cached
            "none" if "none" in methods else "cached" if "cached" in methods else "measured"
        )
        infos = [p.baseline for p in parts if p.devices and p.baseline is not None]
        return cls.from_devices(
            [d for p in parts for d in p.devices],
            wall_time_sec,
            baseline_method=baseline_method,
            baseline_info=BaselineInfo.combine(infos),
        )
